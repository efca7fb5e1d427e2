"""`recommender serve --workers 2`: every worker serves the published version and live changes.

Real uvicorn worker processes; each request opens a fresh connection, so the kernel spreads
them over both workers.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from index.versions.reindex_pipeline import reindex
from recommender.encoding.encoder_protocol import Vectors
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.settings import Settings
from tests.support.helpers import build_fake_index, synthetic_records, write_jsonl
from tests.support.processes import ServeProcess

TOKEN = "workers-test-token"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServeProcess, Settings]]:
    """`serve --workers 2` over the synthetic corpus, and its settings."""
    settings, _ = build_fake_index(tmp_path / "data", redis_url=None)
    env = {
        "RECOMMENDER_MODEL": "fake-hashing",
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_ADMIN_TOKEN": TOKEN,
        "RECOMMENDER_RELOAD_INTERVAL_SECONDS": "0.2",
    }
    with ServeProcess(env, tmp_path / "serve.log", args=["--workers", "2"]) as process:
        yield process, settings


@pytest.fixture
def served(server: tuple[ServeProcess, Settings]) -> tuple[str, Settings]:
    process, settings = server
    return process.url, settings


def fresh_get(base: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=5, headers={"Connection": "close"}) as client:
        return client.get(path)


def wait_until_every_worker_serves(base: str, version: str, timeout: float = 30.0) -> None:
    """Poll until 30 fresh connections in a row (both workers) answer with `version`."""
    deadline = time.monotonic() + timeout
    while True:
        versions = {fresh_get(base, "/v1/index").json()["version"] for _ in range(30)}
        if versions == {version}:
            return
        assert time.monotonic() < deadline, f"workers serve {versions}, not {version}"
        time.sleep(0.1)


def test_every_worker_serves_a_new_version_and_live_changes(
    served: tuple[str, Settings], tmp_path: Path
) -> None:
    base, settings = served
    workers: set[int] = set()
    for _ in range(400):  # the kernel spreads fresh connections; a busy machine less evenly
        workers.add(fresh_get(base, "/healthz").json()["worker"])
        if len(workers) == 2:
            break
    assert len(workers) == 2, "fresh connections never reached the second worker"
    records = synthetic_records()
    records.append({**records[0], "slug": "volcano-new", "title": "Volcano: fresh eruption"})
    published = reindex(
        settings.index, [write_jsonl(tmp_path / "next.jsonl", records)], HashingEncoder()
    )
    wait_until_every_worker_serves(base, published.version)  # each polls CURRENT every 0.2 s

    path = "/v1/articles/volcano-0/related?limit=3"
    assert all("volcano-1" in fresh_get(base, path).text for _ in range(10))  # now cached
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as admin:
        assert admin.delete("/v1/articles/volcano-1").status_code == 204
    answers = [fresh_get(base, path) for _ in range(30)]
    assert all(a.status_code == 200 and "volcano-1" not in a.text for a in answers)


def test_of_one_undo_sent_to_both_workers_at_once_exactly_one_is_applied(
    served: tuple[str, Settings],
) -> None:
    base, _ = served
    admin_headers = {"Authorization": f"Bearer {TOKEN}", "Connection": "close"}

    def post(path: str, barrier: threading.Barrier) -> int:
        with httpx.Client(base_url=base, timeout=10, headers=admin_headers) as client:
            barrier.wait()
            return client.post(path).status_code

    with ThreadPoolExecutor(2) as pool, httpx.Client(base_url=base, headers=admin_headers) as admin:
        for round_ in range(30):
            pinned = admin.post(
                "/v1/articles/volcano-0/pins", json={"target": f"bitcoin-{round_ % 3}", "slot": 1}
            ).json()["audit_id"]
            barrier = threading.Barrier(2)
            undo = f"/v1/audit/{pinned}/undo"
            sent = [pool.submit(post, undo, barrier) for _ in range(2)]
            statuses = sorted(future.result() for future in sent)
            assert statuses == [201, 409], f"round {round_}"
            trail = admin.get("/v1/audit", params={"limit": 500}).json()
            assert [r["reason"] for r in trail].count(f"undo of #{pinned}") == 1


def test_a_logged_out_session_is_refused_by_every_worker(served: tuple[str, Settings]) -> None:
    base, _ = served
    with httpx.Client(base_url=base, timeout=10) as browser:
        page = browser.get("/editor/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        login = {"name": "Ana", "password": TOKEN, "csrf": csrf.group(1), "next": "/editor"}
        assert browser.post("/editor/login", data=login).status_code == 303
        cookie = browser.cookies["editor_session"]
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/editor").text)
        assert csrf is not None
        assert browser.post("/editor/logout", data={"csrf": csrf.group(1)}).status_code == 303

    def replay(method: str, path: str, **form: str) -> httpx.Response:
        headers = {"Cookie": f"editor_session={cookie}", "Connection": "close"}
        with httpx.Client(base_url=base, timeout=5, headers=headers) as stolen:
            return stolen.request(method, path, data=form or None)

    for _ in range(20):  # fresh connections: both workers are asked
        assert replay("GET", "/editor").headers["location"].startswith("/editor/login")
        pinned = replay(
            "POST", "/editor/articles/volcano-0/pins", target="bitcoin-1", csrf=csrf.group(1)
        )
        assert pinned.headers["location"].startswith("/editor/login")
    trail = httpx.get(f"{base}/v1/audit", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert trail == []


class CorrectingEncoder(HashingEncoder):
    """The fake encoder, which `PUT`s a correction once the reindex embeds (after its feed read)."""

    def __init__(self, base: str, slug: str, title: str) -> None:
        super().__init__()
        self._correction: tuple[str, str] | None = (slug, title)
        self._base = base

    def encode(self, texts: Sequence[str]) -> Vectors:
        if self._correction is not None:
            (slug, title), self._correction = self._correction, None
            put_title(self._base, slug, title)
        return super().encode(texts)


def put_title(base: str, slug: str, title: str) -> None:
    record = {**synthetic_records()[0], "slug": slug, "title": title}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.put(f"{base}/v1/articles/{slug}", json=record, headers=headers).status_code == 200


def test_a_correction_put_during_a_reindex_is_served_by_every_worker_after_it_publishes(
    served: tuple[str, Settings], tmp_path: Path
) -> None:
    base, settings = served
    put_title(base, "bitcoin-0", "First correction")
    fresh = {**synthetic_records()[0], "slug": "volcano-new", "title": "Volcano: new eruption"}
    records = [*synthetic_records(), fresh]  # one article to embed: the correction comes then
    encoder = CorrectingEncoder(base, "bitcoin-0", "Second correction")
    published = reindex(settings.index, [write_jsonl(tmp_path / "next.jsonl", records)], encoder)
    assert published.published and published.embedded == 1
    wait_until_every_worker_serves(base, published.version)
    for _ in range(20):  # fresh connections: both workers are asked
        assert fresh_get(base, "/v1/articles/bitcoin-0").json()["title"] == "Second correction"


def worker_pids(parent: int) -> list[int]:
    """The worker processes uvicorn's supervisor `parent` runs (its spawned children)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def mapped_files(pid: int) -> str:
    """The shared libraries and files process `pid` has mapped (/proc/PID/maps)."""
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_supervisor_leaves_the_app_to_its_workers(
    server: tuple[ServeProcess, Settings],
) -> None:
    """uvicorn's supervisor only binds the socket and watches the workers: it never loads the
    app (FastAPI, FAISS, the routes), which each worker imports for itself."""
    process, _ = server
    workers = worker_pids(process.pid)
    assert len(workers) == 2, workers
    assert "faiss" not in mapped_files(process.pid)
    assert all("faiss" in mapped_files(worker) for worker in workers)
    assert fresh_get(process.url, "/readyz").status_code == 200


@pytest.mark.timing
def test_a_worker_that_stalls_past_uvicorns_default_ping_timeout_is_not_replaced(
    tmp_path: Path,
) -> None:
    """A worker starved of CPU (here: stopped) for 8 s stays; uvicorn's default would have
    killed it after 5 s, and on a busy host it killed starting workers in a loop."""
    settings, _ = build_fake_index(tmp_path / "data", redis_url=None)
    env = {"RECOMMENDER_MODEL": "fake-hashing", "RECOMMENDER_DATA_DIR": str(settings.data_dir)}
    log = tmp_path / "serve.log"
    with ServeProcess(env, log, args=["--workers", "2"]) as server:
        workers = worker_pids(server.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGSTOP)
        try:
            time.sleep(8)
        finally:
            with contextlib.suppress(ProcessLookupError):  # killed by the supervisor
                os.kill(workers[0], signal.SIGCONT)
        time.sleep(1)  # the supervisor's next round of pings
        assert worker_pids(server.pid) == workers, server.log_tail()
        assert "died" not in log.read_text(), server.log_tail()
        assert fresh_get(server.url, "/readyz").status_code == 200
