"""`recommender serve --workers 2`: every worker serves the published version and live changes.

Real uvicorn worker processes; each request opens a fresh connection, so the kernel spreads
them over both workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from index.versions.reindex_pipeline import reindex
from recommender.embedding import HashingEncoder
from recommender.settings import Settings
from tests.support.helpers import build_fake_index, synthetic_records, write_jsonl
from tests.support.processes import ServeProcess

TOKEN = "workers-test-token"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    settings, _ = build_fake_index(tmp_path / "data", redis_url=None)
    env = {
        "RECOMMENDER_MODEL": "fake-hashing",
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_ADMIN_TOKEN": TOKEN,
        "RECOMMENDER_RELOAD_INTERVAL_SECONDS": "0.2",
    }
    with ServeProcess(env, tmp_path / "serve.log", args=["--workers", "2"]) as server:
        yield server.url, settings


def fresh_get(base: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=5, headers={"Connection": "close"}) as client:
        return client.get(path)


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
    published = reindex(settings, [write_jsonl(tmp_path / "next.jsonl", records)], HashingEncoder())
    time.sleep(1.0)  # both workers poll CURRENT every 0.2 s
    versions = {fresh_get(base, "/v1/index").json()["version"] for _ in range(30)}
    assert versions == {published.version}

    path = "/v1/articles/volcano-0/related?limit=3"
    assert all("volcano-1" in fresh_get(base, path).text for _ in range(10))  # now cached
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as admin:
        assert admin.delete("/v1/articles/volcano-1").status_code == 204
    answers = [fresh_get(base, path) for _ in range(30)]
    assert all(a.status_code == 200 and "volcano-1" not in a.text for a in answers)
