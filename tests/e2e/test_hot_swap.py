"""The running API picks up a newly published version by itself, with zero failed requests."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from api.app import create_app
from index.versions.reindex_pipeline import reindex
from recommender.encoding.hashing_encoder import HashingEncoder
from tests.support.helpers import build_fake_index, synthetic_records, wait_for, write_jsonl
from tests.support.servers import running_server


def test_requests_flow_without_error_across_a_version_swap(tmp_path: Path) -> None:
    records = synthetic_records()
    settings, first = build_fake_index(
        tmp_path / "data", records, redis_url=None, reload_interval_seconds=0.1
    )
    records.append({**records[0], "slug": "volcano-new", "title": "Volcano: a new eruption"})
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def reader(base: str) -> None:
        with httpx.Client(base_url=base, timeout=5) as client:
            for n in range(100_000):
                if stop.is_set():
                    return
                slug = records[n % 18]["slug"]
                response = client.get(f"/v1/articles/{slug}/related", params={"limit": 4})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.add(response.json()["index_version"])

    with running_server(create_app(settings)) as base:
        threads = [threading.Thread(target=reader, args=(base,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(statuses) >= 30, "readers answered before the swap")
        second = reindex(
            settings.index, [write_jsonl(tmp_path / "next.jsonl", records)], HashingEncoder()
        )
        wait_for(lambda: second.version in versions, "the new version served")
        swapped = len(statuses)
        wait_for(lambda: len(statuses) >= swapped + 30, "readers answered after the swap")
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        with httpx.Client(base_url=base) as client:
            assert client.get("/v1/index").json()["version"] == second.version
            assert client.get("/v1/articles/volcano-new/related").status_code == 200

    assert versions == {first.version, second.version}
    assert set(statuses) == {200}
