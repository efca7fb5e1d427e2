"""Two replicas, each with its own data directory, share one Redis and one version store.

Real processes throughout: two `recommender serve` on loopback ports (as two hosts would
run them), and `recommender reindex` publishing to the store, a `file://` directory standing
in for a shared filesystem or an object store. Both replicas must follow the store's
CURRENT, and every request sent to them while they swap versions must succeed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from index.versions.version_store import VersionStore
from tests.support.helpers import REPO, synthetic_records, wait_for, write_jsonl
from tests.support.processes import ServeProcess

pytestmark = pytest.mark.redis

RELATED = "/v1/articles/volcano-0/related?limit=3"


class Traffic(threading.Thread):
    """Asks every replica for one related list, over and over, and keeps every outcome."""

    def __init__(self, bases: list[str]) -> None:
        super().__init__(daemon=True)
        self.bases = bases
        self.outcomes: list[tuple[int, str | None]] = []  # (status, index_version)
        self.failures: list[str] = []
        self._done = threading.Event()

    def run(self) -> None:
        clients = [httpx.Client(base_url=base, timeout=5) for base in self.bases]
        try:
            while not self._done.is_set():
                for client in clients:
                    try:
                        response = client.get(RELATED)
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{client.base_url}: {exc!r}")
                        continue
                    body = response.json() if response.status_code == 200 else {}
                    self.outcomes.append((response.status_code, body.get("index_version")))
                time.sleep(0.01)
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=30)


def reindex(env: dict[str, str], feed: Path) -> str:
    """`recommender reindex --source FEED`; the id it published."""
    result = subprocess.run(
        [sys.executable, "-m", "console", "reindex", "--source", str(feed)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["published"] is True
    return str(summary["version"])


def served_version(base: str) -> str | None:
    response = httpx.get(f"{base}/v1/index", timeout=5)
    return str(response.json()["version"]) if response.status_code == 200 else None


def wait_until_serving(bases: list[str], version: str, timeout: float = 30.0) -> None:
    wait_for(
        lambda: [served_version(base) for base in bases] == [version] * len(bases),
        f"every replica serving {version}",
        timeout,
    )


@pytest.fixture
def environment(redis_url: str, redis_namespace: str, tmp_path: Path) -> dict[str, str]:
    """What every process shares: the model, Redis (one namespace) and the version store."""
    return {
        **os.environ,
        "RECOMMENDER_MODEL": "fake-hashing",
        "REDIS_URL": redis_url,
        "RECOMMENDER_CACHE_NAMESPACE": redis_namespace,
        "RECOMMENDER_STORE_URL": (tmp_path / "store").as_uri(),
        "RECOMMENDER_RELOAD_INTERVAL_SECONDS": "0.2",
    }


@pytest.fixture
def replicas(environment: dict[str, str], tmp_path: Path) -> Iterator[list[tuple[str, Path]]]:
    """Two replicas with data directories of their own: (base URL, data directory) each."""
    with ExitStack() as stack:
        started = []
        for name in ("replica-a", "replica-b"):
            data_dir = tmp_path / name
            env = {**environment, "RECOMMENDER_DATA_DIR": str(data_dir)}
            server = ServeProcess(env, tmp_path / f"{name}.log", ready_path="/healthz")
            started.append((stack.enter_context(server).url, data_dir))
        yield started


def test_both_replicas_serve_each_version_the_reindex_job_publishes(
    replicas: list[tuple[str, Path]], environment: dict[str, str], tmp_path: Path
) -> None:
    bases = [base for base, _ in replicas]
    assert [httpx.get(base + RELATED).status_code for base in bases] == [503, 503]

    job = {**environment, "RECOMMENDER_DATA_DIR": str(tmp_path / "builder")}
    records = synthetic_records()
    first = reindex(job, write_jsonl(tmp_path / "first.jsonl", records))
    wait_until_serving(bases, first)
    for base, data_dir in replicas:
        assert httpx.get(base + RELATED).json()["index_version"] == first
        assert VersionStore(data_dir).version_ids() == [first]  # each fetched its own copy
    assert [httpx.get(base + "/v1/articles/volcano-new").status_code for base in bases] == [
        404,
        404,
    ]

    traffic = Traffic(bases)
    traffic.start()
    try:
        records.append({**records[0], "slug": "volcano-new", "title": "Volcano: fresh eruption"})
        second = reindex(job, write_jsonl(tmp_path / "second.jsonl", records))
        wait_until_serving(bases, second)
        swapped = len(traffic.outcomes)
        wait_for(lambda: len(traffic.outcomes) >= swapped + 20, "traffic after the swap too")
    finally:
        traffic.stop()

    assert traffic.failures == []
    assert {status for status, _ in traffic.outcomes} == {200}
    assert {version for _, version in traffic.outcomes} == {first, second}  # across the swap
    for base in bases:
        assert httpx.get(base + RELATED).json()["index_version"] == second
        assert httpx.get(base + "/v1/articles/volcano-new").status_code == 200
