"""`make demo`'s moving parts: the port check (through make itself), the banner with the admin
token, and the publisher's page pointed at the API's port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from api.app import create_app
from tests.support.helpers import REPO, build_fake_index, wait_for
from tests.support.redis_server import free_port
from tests.support.servers import running_server

ANNOUNCE = REPO / "demo" / "announce.py"
SITE_SERVER = REPO / "demo" / "site_server.py"


@contextmanager
def listening() -> Iterator[int]:
    """A loopback port that something listens on, for as long as the block runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def announce(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ANNOUNCE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_make_demo_refuses_a_busy_port_before_it_starts_anything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "RECOMMENDER_DATA_DIR": str(data),
        # Were the check missing, reindex would fail at once instead of loading the real model.
        "RECOMMENDER_MODEL": str(tmp_path / "no-such-model"),
    }
    with listening() as busy:
        # This interpreter's virtualenv; the Makefile's own (`-o`: not made) is not needed.
        make = ["make", "--no-print-directory", "-o", ".venv/.installed", "demo"]
        ports = [f"DEMO_API_PORT={busy}", f"DEMO_SITE_PORT={free_port()}"]
        done = subprocess.run(
            [*make, f"BIN={Path(sys.executable).parent}", *ports],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode != 0
    assert f"port {busy} (DEMO_API_PORT) on 127.0.0.1 is already in use" in done.stderr
    assert "make demo DEMO_API_PORT=" in done.stderr, "the message says how to choose others"
    assert not data.exists(), "nothing was indexed"


def test_the_port_check_names_the_busy_site_port_and_passes_free_ones() -> None:
    api, site = free_port(), free_port()
    assert announce("check", str(api), str(site)).returncode == 0
    with listening() as busy:
        done = announce("check", str(api), str(busy))
    assert done.returncode == 1 and f"port {busy} (DEMO_SITE_PORT)" in done.stderr
    same = announce("check", str(api), str(api))
    assert same.returncode == 1 and "both" in same.stderr


def test_the_banner_waits_for_the_api_and_prints_its_ports_and_admin_token(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data", redis_url=None, admin_token="demo-tok-123")
    site = free_port()
    with running_server(create_app(settings)) as api:
        port = api.rsplit(":", 1)[1]
        done = announce("wait", port, str(site), env={"RECOMMENDER_ADMIN_TOKEN": "demo-tok-123"})
    assert done.returncode == 0, done.stderr
    assert f"http://127.0.0.1:{site}/" in done.stdout
    assert f"http://127.0.0.1:{port}/editor" in done.stdout
    assert "admin token                   demo-tok-123" in done.stdout
    assert f"Bearer demo-tok-123' http://127.0.0.1:{port}/v1/stats/ctr" in done.stdout


def test_the_publishers_page_loads_the_widget_from_the_apis_port() -> None:
    api, site = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, str(SITE_SERVER), str(api), str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{site}/", timeout=2).status_code == 200,
            "the demo site to answer",
        )
        page = httpx.get(f"http://127.0.0.1:{site}/", timeout=5).text
        style = httpx.get(f"http://127.0.0.1:{site}/style.css", timeout=5)
    finally:
        server.terminate()
        code = server.wait(timeout=10)
    assert f'href="http://127.0.0.1:{api}/widget.js"' in page  # the snippet's preload
    assert "127.0.0.1:8000" not in page
    assert style.status_code == 200 and style.headers["content-type"] == "text/css"
    assert code == 0, "SIGTERM (as make sends) ends it cleanly"
