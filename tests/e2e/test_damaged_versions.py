"""Damaged index files and a damaged `CURRENT`: clear errors, and the old version keeps serving.

Every file of a version is damaged in turn (truncated, one byte flipped or deleted) after the
version was published, as a failing disk or a botched copy would; the running API, a restarted
API and the CLI are then asked for suggestions. `CURRENT` is deleted, emptied, filled with junk
or pointed at a version that is gone. Real uvicorn, real FAISS, the CLI in-process.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from api.app import create_app
from api.cli.commands import app as cli
from index.versions.index_version import DATA_FILES
from index.versions.manifest import MANIFEST_NAME
from index.versions.version_store import CURRENT_NAME, VersionStore
from recommender.encoding.encoder_protocol import FAKE_MODEL
from recommender.settings import Settings
from tests.support.helpers import (
    build_fake_index,
    fake_settings,
    synthetic_records,
    wait_for,
    wait_for_polls,
)
from tests.support.servers import running_server

NEW_SLUG = "volcano-new"  # only in the second version
DAMAGES = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "flipped": lambda path: path.write_bytes(_flip_last_byte(path.read_bytes())),
    "deleted": lambda path: path.unlink(),
}


def _flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two published versions; the second adds one article."""
    data_dir = tmp_path_factory.mktemp("damaged") / "data"
    records = synthetic_records()
    _, first = build_fake_index(data_dir, records)
    records.append({**records[0], "slug": NEW_SLUG, "title": "Volcano: a new eruption"})
    _, second = build_fake_index(data_dir, records)
    return data_dir, [first.version, second.version]


@pytest.fixture
def data(template: tuple[Path, list[str]], tmp_path: Path) -> tuple[Settings, str, str]:
    """A copy of the template: settings, the first version id, the second (published)."""
    copy = tmp_path / "data"
    shutil.copytree(template[0], copy)
    first, second = template[1]
    return fake_settings(copy, reload_interval_seconds=0.05, redis_url=None), first, second


def point_current_at(data_dir: Path, text: str) -> None:
    """Replace CURRENT atomically, as publishing does, but without verifying anything."""
    temporary = data_dir / ".CURRENT.test"
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, data_dir / CURRENT_NAME)


def run_cli(settings: Settings, *args: str) -> Result:
    env = {"RECOMMENDER_DATA_DIR": str(settings.data_dir), "RECOMMENDER_MODEL": FAKE_MODEL}
    return CliRunner().invoke(cli, list(args), env=env)


def served_version(base: str) -> str:
    version: str = httpx.get(f"{base}/v1/index", timeout=5).json()["version"]
    return version


def assert_serves(base: str, version: str) -> None:
    """Every kind of read answers from `version`."""
    for record in synthetic_records()[::4]:
        response = httpx.get(f"{base}/v1/articles/{record['slug']}/related?limit=3", timeout=5)
        assert response.status_code == 200, response.text
        assert response.json()["index_version"] == version
    ready = httpx.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["index_version"] == version


@pytest.mark.parametrize(
    ("name", "damage"),
    # Every file, each kind of damage in turn (the checks are the same for every file).
    list(zip([*DATA_FILES, MANIFEST_NAME], itertools.cycle(DAMAGES), strict=False)),
)
def test_a_version_damaged_after_publishing_is_refused_and_the_old_one_keeps_serving(
    data: tuple[Settings, str, str], name: str, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings, first, second = data
    store = VersionStore(settings.data_dir)
    store.rollback(to=first)
    DAMAGES[damage](settings.data_dir / "versions" / second / name)
    caplog.set_level(logging.INFO, logger="api.serving.index_holder")

    with running_server(create_app(settings)) as base:
        assert_serves(base, first)
        point_current_at(settings.data_dir, second)
        wait_for(
            lambda: "refused published version" in caplog.text,
            "the running API did not try the damaged version",
        )
        assert name in caplog.text
        assert_serves(base, first)
        assert httpx.get(f"{base}/v1/articles/{NEW_SLUG}", timeout=5).status_code == 404

    with TestClient(create_app(settings)) as restarted:  # the newest intact version
        assert restarted.get("/v1/index").json()["version"] == first

    related = run_cli(settings, "related", "volcano-0", "--json")
    assert related.exit_code == 0, related.output
    assert name in related.stderr and f"serving {first} instead" in related.stderr
    assert f'"index_version":"{first}"' in related.stdout
    refused = run_cli(settings, "rollback", "--to", second)
    assert refused.exit_code == 3
    assert refused.stderr.startswith("recommender: error: ") and name in refused.stderr
    assert store.current_id() == second  # nothing was changed by the refusal


def test_with_no_intact_version_the_errors_name_the_damage(tmp_path: Path) -> None:
    settings, summary = build_fake_index(tmp_path / "data", redis_url=None)
    DAMAGES["truncated"](settings.data_dir / "versions" / summary.version / "index.faiss")

    result = run_cli(settings, "related", "volcano-0")
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.startswith("recommender: error: ") and "index.faiss is" in result.stderr
    with TestClient(create_app(settings)) as client:
        response = client.get("/v1/articles/volcano-0/related")
        assert response.status_code == 503 and response.json()["error"] == "index_not_ready"
        assert "index.faiss is" in client.get("/readyz").json()["detail"]


CURRENT_DAMAGES: dict[str, Callable[[Path, str], None]] = {
    "deleted": lambda data_dir, _: (data_dir / CURRENT_NAME).unlink(),
    "emptied": lambda data_dir, _: point_current_at(data_dir, ""),
    "junk": lambda data_dir, _: point_current_at(data_dir, "../../etc/passwd\n"),
}


@pytest.mark.parametrize("damage", list(CURRENT_DAMAGES))
def test_a_damaged_current_pointer_keeps_the_loaded_version_serving(
    data: tuple[Settings, str, str], damage: str
) -> None:
    settings, _, second = data
    with running_server(create_app(settings)) as base:
        assert_serves(base, second)
        CURRENT_DAMAGES[damage](settings.data_dir, second)
        wait_for_polls(base)  # the watcher has seen the damage, several times
        assert_serves(base, second)

        with TestClient(create_app(settings)) as restarted:  # no pointer: nothing to trust
            assert restarted.get("/v1/articles/volcano-0/related").status_code == 503
            assert restarted.get("/readyz").json()["detail"]

        result = run_cli(settings, "related", "volcano-0")
        assert result.exit_code == 3 and result.stderr.startswith("recommender: error: ")
        assert "Traceback" not in result.output
        listing = run_cli(settings, "versions")
        assert listing.exit_code == 0 and second in listing.stdout and "*" not in listing.stdout

        # The operator's way back: publish a version by name; the running API follows.
        assert run_cli(settings, "rollback", "--to", second).exit_code == 0
        assert_serves(base, second)


def test_current_pointing_at_a_removed_version_serves_the_newest_intact_one(
    data: tuple[Settings, str, str],
) -> None:
    settings, first, second = data
    shutil.rmtree(settings.data_dir / "versions" / second)

    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/index").json()["version"] == first
    result = run_cli(settings, "related", "volcano-0", "--json")
    assert result.exit_code == 0, result.output
    assert second in result.stderr and f"serving {first} instead" in result.stderr
