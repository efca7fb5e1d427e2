"""Reindexes while a swap is under way, and restarts while editors publish: nothing is lost.

- Reindexes published back to back, each landing while the API is still swapping to the one
  before, under steady reads through Redis: every read answers 200, each reader sees versions
  only move forward, and every article of the last version is served.
- The API killed (SIGKILL) and restarted (SIGTERM) while live upserts flow, with a rebuild in
  between: every upsert that was answered 2xx is served afterwards.
- The same with editors' pins and blocks: every override answered 2xx is in force afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from index.versions.reindex_pipeline import reindex
from recommender.encoding.encoder_protocol import FAKE_MODEL
from recommender.encoding.hashing_encoder import HashingEncoder
from tests.support.helpers import build_fake_index, synthetic_records, wait_for, write_jsonl
from tests.support.processes import ServeProcess
from tests.support.servers import running_server

TOKEN = "restart-test-token"


@dataclass
class Readers:
    """Threads that each read related lists one after another, noting (status, version)."""

    base: str
    slugs: list[str]
    count: int = 3
    seen: list[list[tuple[int, str | None]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Readers:
        for n in range(self.count):
            self.seen.append([])
            thread = threading.Thread(target=self._read, args=(n,), daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        assert not any(thread.is_alive() for thread in self._threads), "a reader hung"

    def answered(self) -> int:
        return sum(len(seen) for seen in self.seen)

    def _read(self, n: int) -> None:
        with httpx.Client(base_url=self.base, timeout=5) as client:
            i = n
            while not self._stop.is_set():
                i += 1
                slug = self.slugs[i % len(self.slugs)]
                response = client.get(f"/v1/articles/{slug}/related", params={"limit": 1 + i % 5})
                version = response.json()["index_version"] if response.status_code == 200 else None
                self.seen[n].append((response.status_code, version))


@pytest.mark.redis
def test_reindexes_published_during_a_swap_under_load_fail_no_request(
    tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    records = synthetic_records()
    settings, first = build_fake_index(
        tmp_path / "data",
        records,
        redis_url=redis_url,
        cache_namespace=redis_namespace,
        reload_interval_seconds=0.05,
    )
    published = [first.version]
    slugs = [record["slug"] for record in records]
    with running_server(create_app(settings)) as base, Readers(base, slugs) as readers:
        wait_for(lambda: readers.answered() >= 30, "readers answered before the swaps")
        for n in range(4):  # back to back: each lands while the API loads the one before
            records.append({**records[n], "slug": f"extra-{n}", "title": f"Extra story {n}"})
            feed = write_jsonl(tmp_path / f"feed-{n}.jsonl", records)
            published.append(reindex(settings.index, [feed], HashingEncoder()).version)
        with httpx.Client(base_url=base, timeout=5) as client:
            wait_for(
                lambda: client.get("/v1/index").json()["version"] == published[-1],
                "the last version was not served",
            )
            swapped = readers.answered()
            wait_for(lambda: readers.answered() >= swapped + 30, "readers answered after them")
            for n in range(4):
                assert client.get(f"/v1/articles/extra-{n}/related").status_code == 200

    answers = [answer for seen in readers.seen for answer in seen]
    assert len(answers) > 50
    assert {status for status, _ in answers} == {200}
    for seen in readers.seen:
        order = [published.index(version) for _, version in seen if version is not None]
        assert order == sorted(order), "a reader saw an older version after a newer one"
    assert {version for _, version in answers} <= set(published)


def upsert_body(n: int) -> dict[str, Any]:
    return {
        "title": f"Live story {n}: volcano eruption update",
        "summary": "Latest on the volcano: lava ash iceland flights grounded magma crater",
        "section": "world",
        "published_at": "2024-03-15T12:00:00Z",
    }


#: One admin write: the n-th change's name and the request that makes it.
Change = Callable[[httpx.Client, int], tuple[str, httpx.Request]]


def put_article(client: httpx.Client, n: int) -> tuple[str, httpx.Request]:
    slug = f"live-{n}"
    return slug, client.build_request("PUT", f"/v1/articles/{slug}", json=upsert_body(n))


@dataclass
class AdminWriter:
    """A thread that makes admin changes one after another, noting which were acknowledged."""

    base: str
    change: Change
    acknowledged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> AdminWriter:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "the writer hung"

    def wait_for_more(self, count: int) -> None:
        target = len(self.acknowledged) + count
        wait_for(lambda: len(self.acknowledged) >= target, f"{count} more changes answered")

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=self.base, timeout=5, headers=headers) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                name, request = self.change(client, n)
                try:
                    response = client.send(request)
                except httpx.TransportError:  # the server is down: this one was never answered
                    time.sleep(0.02)
                    continue
                if 200 <= response.status_code < 300:
                    self.acknowledged.append(name)
                else:
                    self.refused.append(f"{name}: {response.status_code} {response.text}")


def changes_through_a_crash_a_rebuild_and_a_restart(
    tmp_path: Path, change: Change
) -> tuple[AdminWriter, dict[str, str]]:
    """Admin changes flowing while the API is SIGKILLed and restarted, the catalog rebuilt
    from a feed that lacks the live changes, and the API restarted again (SIGTERM).

    Returns the writer (what was acknowledged) and the server's environment, to start it again.
    """
    records = synthetic_records()
    settings, _ = build_fake_index(tmp_path / "data", records, redis_url=None)
    env = {
        "RECOMMENDER_MODEL": FAKE_MODEL,
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_ADMIN_TOKEN": TOKEN,
        "RECOMMENDER_RELOAD_INTERVAL_SECONDS": "0.1",
    }
    records[0]["title"] = "Volcano story number 0, revised"
    feed = write_jsonl(tmp_path / "nightly.jsonl", records)  # lacks every live article
    with (
        ServeProcess(env, tmp_path / "serve.log") as server,
        AdminWriter(server.url, change) as writer,
    ):
        writer.wait_for_more(10)
        server.kill()
        server.start()
        writer.wait_for_more(10)
        rebuilt = reindex(settings.index, [feed], HashingEncoder())
        wait_for(
            lambda: httpx.get(f"{server.url}/v1/index").json()["version"] == rebuilt.version,
            "the rebuild was not served",
        )
        writer.wait_for_more(10)
        server.stop()
        server.start()
        writer.wait_for_more(10)
    assert not writer.refused, writer.refused[:5]
    return writer, env


def test_every_acknowledged_upsert_survives_a_crash_a_rebuild_and_a_restart(
    tmp_path: Path,
) -> None:
    upserter, env = changes_through_a_crash_a_rebuild_and_a_restart(tmp_path, put_article)
    with (
        ServeProcess(env, tmp_path / "serve.log") as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        missing = [
            slug
            for slug in upserter.acknowledged
            if client.get(f"/v1/articles/{slug}").status_code != 200
        ]
        assert not missing, f"{len(missing)} of {len(upserter.acknowledged)} lost: {missing[:5]}"
        assert client.get(f"/v1/articles/{upserter.acknowledged[-1]}/related").status_code == 200


SLUGS = [record["slug"] for record in synthetic_records()]


#: The catalog articles the retraction test retracts, each once, early (before the crash and the
#: rebuild, whose feed still has them all), so that nothing retracts them again afterwards.
RETRACTED = [slug for slug in SLUGS if slug.startswith(("bitcoin-", "football-"))]


def put_or_retract(client: httpx.Client, n: int) -> tuple[str, httpx.Request]:
    """Alternately a live article and the retraction of the next catalog article, while any
    is left; then live articles only."""
    if n % 2 or n // 2 > len(RETRACTED):
        return put_article(client, n)
    slug = RETRACTED[n // 2 - 1]
    return f"retracted/{slug}", client.build_request("DELETE", f"/v1/articles/{slug}")


def test_every_acknowledged_retraction_survives_a_crash_a_rebuild_and_a_restart(
    tmp_path: Path,
) -> None:
    """Checked where readers look: the cards, and every public list, filtered or not."""
    writer, env = changes_through_a_crash_a_rebuild_and_a_restart(tmp_path, put_or_retract)
    retracted = {name.split("/")[1] for name in writer.acknowledged if "/" in name}
    upserted = [name for name in writer.acknowledged if "/" not in name]
    assert retracted and upserted
    with (
        ServeProcess(env, tmp_path / "serve.log") as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        back = [slug for slug in retracted if client.get(f"/v1/articles/{slug}").status_code != 404]
        assert not back, f"retracted articles served again: {back}"
        assert all(client.get(f"/v1/articles/{slug}").status_code == 200 for slug in upserted)
        offered = []
        # A retraction cut off by the kill may have landed unacknowledged: ask only served ones.
        served = [s for s in SLUGS if client.get(f"/v1/articles/{s}").status_code == 200]
        for source in served + upserted[-3:]:
            queries: list[dict[str, str | int]] = [{}, {"limit": 10}, {"section": "business"}]
            for params in queries:
                answer = client.get(f"/v1/articles/{source}/related", params=params)
                assert answer.status_code == 200, answer.text
                items = {item["slug"] for item in answer.json()["items"]}
                offered += [f"{source} {params}: {slug}" for slug in items & retracted]
            fragment = client.get(f"/v1/articles/{source}/related.html", params={"limit": 10})
            offered += [f"{source} fragment: {slug}" for slug in retracted if slug in fragment.text]
        assert not offered, offered[:5]


def post_override(client: httpx.Client, n: int) -> tuple[str, httpx.Request]:
    """Alternately a pin and a block, over many (source, target) pairs."""
    source = SLUGS[n % len(SLUGS)]
    target = SLUGS[(n * 7 + 1) % len(SLUGS)]
    if target == source:
        target = SLUGS[(n * 7 + 2) % len(SLUGS)]
    kind = "pins" if n % 2 else "blocks"
    body = {"target": target, "reason": f"change {n}"}
    request = client.build_request("POST", f"/v1/articles/{source}/{kind}", json=body)
    return f"{kind}/{source}/{target}", request


def test_every_acknowledged_override_survives_a_crash_a_rebuild_and_a_restart(
    tmp_path: Path,
) -> None:
    writer, env = changes_through_a_crash_a_rebuild_and_a_restart(tmp_path, post_override)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        ServeProcess(env, tmp_path / "serve.log") as server,
        httpx.Client(base_url=server.url, timeout=5, headers=headers) as client,
    ):
        missing = []
        for name in set(writer.acknowledged):
            kind, source, target = name.split("/")
            listed = client.get(f"/v1/articles/{source}/{kind}").json()
            if target not in {override["target"] for override in listed}:
                missing.append(name)
        assert not missing, f"{len(missing)} of {len(writer.acknowledged)} lost: {missing[:5]}"
        trail = client.get("/v1/audit", params={"limit": 1000}).json()
        assert len(trail) >= len(writer.acknowledged)
