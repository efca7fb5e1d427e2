"""A real WordPress, a real `recommender serve` and a real Chromium, once per test module."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.encoding.encoder_protocol import FAKE_MODEL
from tests.browser.conftest import artifacts, browser  # noqa: F401  (Chromium, screenshots)
from tests.support.helpers import ADMIN_TOKEN, build_fake_index, synthetic_records
from tests.support.processes import ServeProcess
from tests.wordpress.wordpress_site import MYSQL, AdminClient, WordPressSite

AMP_FLAG = Path(__file__).with_name("amp-flag.php")


@pytest.fixture(scope="module")
def wordpress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WordPressSite]:
    """A freshly installed WordPress whose failed syncs are retried after 1 s (then 2, 4...),
    whose backfill sends 2 posts a request, and whose `amp_is_request()` is true on `?amp=1`
    (amp-flag.php: the AMP plugin's public API, the AMP plugin not being in Debian)."""
    for tool in ("php", "mysql", "mysqladmin"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} is missing: install Debian's wordpress, php-cli, php-mysql and "
                "mariadb-server (`make test` and .ci/run do it)",
                pytrace=False,
            )
    if subprocess.run(["mysqladmin", *MYSQL[1:], "ping"], capture_output=True).returncode:
        pytest.fail(
            "MariaDB does not answer on 127.0.0.1:3306 as root: start it (`service mariadb "
            "start`; .ci/run does)",
            pytrace=False,
        )
    site = WordPressSite(
        tmp_path_factory.mktemp("wordpress") / "site",
        # WP-Cron spawns its run by a loopback request that gives up after 0.01 s; on a loaded
        # machine one can be lost, and its lock then stops every spawn for WP_CRON_LOCK_TIMEOUT
        # (60 s by default): far longer than a retry delay of 1 s.
        extra_config="define('RELATED_ARTICLES_RETRY_SECONDS', 1);\n"
        "define('RELATED_ARTICLES_BACKFILL_BATCH', 2);\n"
        "define('WP_CRON_LOCK_TIMEOUT', 5);",
        mu_plugins=(AMP_FLAG,),
    )
    try:
        site.start()
        site.install()
        yield site
    finally:
        site.close()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, wordpress: WordPressSite
) -> Iterator[ServeProcess]:
    """The API over the synthetic corpus (fake encoder), open to the site's origin."""
    tmp = tmp_path_factory.mktemp("service")
    settings, _ = build_fake_index(tmp / "data", synthetic_records(), redis_url=None)
    env = {
        "RECOMMENDER_MODEL": FAKE_MODEL,
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN,
        "RECOMMENDER_RELOAD_INTERVAL_SECONDS": "0.1",
        "RECOMMENDER_EXPLORATION": "0",  # boxes show the ranked list the tests expect
        "RECOMMENDER_CORS_ORIGINS": json.dumps([wordpress.url]),
    }
    with ServeProcess(env, tmp / "serve.log") as server:
        yield server


@pytest.fixture(scope="module")
def admin(wordpress: WordPressSite) -> Iterator[AdminClient]:
    client = AdminClient(wordpress)
    try:
        yield client
    finally:
        client.close()
