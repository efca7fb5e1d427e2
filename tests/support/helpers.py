"""Shared test helpers: a synthetic corpus whose right answers are known by construction."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from index.versions.compact_catalog import DEFAULT_BLOCKS, BlockSizes
from index.versions.reindex_pipeline import ReindexSummary, reindex
from recommender.encoding.encoder_protocol import FAKE_MODEL
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


def require_shared(path: Path) -> Path:
    """`path`, a file of the shared material beside the checkout; when it is missing the test
    (or, called at import, the module's collection) fails saying where it was expected."""
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: the tests read the shared data sets from {SHARED}, a folder "
            "beside the checkout (clone the project next to shared/, as CI does)",
            pytrace=False,
        )
    return path


#: The admin token of the API tests' settings.
ADMIN_TOKEN = "s3cret-admin-token"

TOPICS = {
    "volcano": "volcano eruption lava ash iceland flights grounded magma crater",
    "election": "election ballot voters senate campaign polls candidate turnout",
    "football": "football striker goal league match coach stadium transfer",
    "vaccine": "vaccine trial dose pfizer immunity virus booster approval",
    "bitcoin": "bitcoin crypto exchange price miners blockchain wallet token",
    "wildfire": "wildfire blaze firefighters evacuation smoke acres containment drought",
}
SECTIONS = {
    "volcano": "world",
    "election": "politics",
    "football": "sport",
    "vaccine": "health",
    "bitcoin": "business",
    "wildfire": "world",
}


def synthetic_records(per_topic: int = 3) -> list[dict[str, Any]]:
    """Articles in topical groups: the related articles of each are the rest of its group."""
    records = []
    for topic, words in TOPICS.items():
        for i in range(per_topic):
            records.append(
                {
                    "slug": f"{topic}-{i}",
                    "title": f"{topic.title()} story number {i}",
                    "summary": f"Latest on the {topic}: {words}",
                    "body": f"{words} {words.split()[i % 8]} report {i}",
                    "section": SECTIONS[topic],
                    "published_at": f"2024-03-{10 + i:02d}T12:00:00Z",
                    "labels": {"topic": topic},
                }
            )
    return records


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def cache_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for the stores a test is parametrised with ("memory" or "redis"); with Redis,
    the cache and the event counters live in this test's namespace."""
    if request.param == "redis":
        namespace = request.getfixturevalue("redis_namespace")
        return {
            "redis_url": request.getfixturevalue("redis_url"),
            "cache_namespace": namespace,
            "events_namespace": namespace + "events:",
        }
    return {"redis_url": None}


def slugs(response: Any) -> list[str]:
    """The slugs of a related answer's items, in order."""
    assert response.status_code == 200, response.text
    return [item["slug"] for item in response.json()["items"]]


#: The headers of a widget's beacon: what `navigator.sendBeacon` sends for a string.
BEACON = {"Content-Type": "text/plain;charset=UTF-8"}

_impressions = itertools.count()


def impression_id() -> str:
    """A new impression id, as the widget draws one per box shown (distinct, not random)."""
    return f"test-impression-{next(_impressions):08d}"


def box_events(
    client: Any,
    source: str,
    kind: str = "impression",
    slots: Sequence[int] | None = None,
    *,
    limit: int = 5,
    impression: str | None = None,
    placement: str | None = None,
) -> list[dict[str, Any]]:
    """Events of one box of `source` as the widget sends them: the list the service serves
    (`client` is a TestClient or an httpx.Client) in `placement` (none: the default), its
    feedback token, and an impression id (a new one unless given), at `slots` (default: every
    slot)."""
    params: dict[str, Any] = {"limit": limit}
    if placement is not None:
        params["placement"] = placement
    response = client.get(f"/v1/articles/{source}/related", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"]
    impression = impression or impression_id()
    return [
        {
            "type": kind,
            "source": source,
            "target": items[slot - 1]["slug"],
            "slot": slot,
            "token": body["feedback"]["token"],
            "impression": impression,
        }
        for slot in (slots or range(1, len(items) + 1))
    ]


def post_events(client: Any, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """POST `events` as one beacon to `client`'s `/v1/events`; the receipt of the 202."""
    response = client.post("/v1/events", content=json.dumps({"events": events}), headers=BEACON)
    assert response.status_code == 202, response.text
    receipt: dict[str, Any] = response.json()
    return receipt


def run_cli(
    *args: str, env: Mapping[str, str | None], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`recommender ARGS` in a subprocess from the checkout, with this process's environment
    changed by `env` (a None value removes the variable)."""
    changed = dict(os.environ)
    for name, value in env.items():
        if value is None:
            changed.pop(name, None)
        else:
            changed[name] = value
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        env=changed, cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def cli_reindex(
    data_dir: Path, feed: Path, *args: str, point: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`recommender reindex --source FEED` in a process of its own with the hashing model, the
    data directory `data_dir`, no Redis and nothing else of this process's `RECOMMENDER_*`;
    `point` arms a fault point, `env` adds variables (e.g. `RECOMMENDER_NEIGHBOURS="8"`)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    environment.pop("REDIS_URL", None)
    environment.update(RECOMMENDER_MODEL=FAKE_MODEL, RECOMMENDER_DATA_DIR=str(data_dir), **env)
    if point is not None:
        environment["RECOMMENDER_FAULT_POINT"] = point
    return subprocess.run(
        [sys.executable, "-m", "console", "reindex", "--source", str(feed), *args],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def fake_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, model=FAKE_MODEL, **overrides)


def build_fake_index(
    data_dir: Path, records: Sequence[dict[str, Any]] | None = None, **overrides: Any
) -> tuple[Settings, ReindexSummary]:
    """Index `records` (default: the synthetic corpus) with the hashing encoder."""
    return build_in_blocks(data_dir, records, DEFAULT_BLOCKS, **overrides)


def build_in_blocks(
    data_dir: Path, records: Sequence[dict[str, Any]] | None, blocks: BlockSizes, **overrides: Any
) -> tuple[Settings, ReindexSummary]:
    """`build_fake_index`, the stages holding the catalog `blocks` at a time."""
    settings = fake_settings(data_dir, **overrides)
    feed = write_jsonl(
        data_dir.parent / f"{data_dir.name}-feed.jsonl", records or synthetic_records()
    )
    return settings, reindex(settings.index, [feed], HashingEncoder(), blocks=blocks)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds (a generous
    bound: how fast things happen is measured by the benchmarks, not asserted here).

    A transport error (a server still starting, or restarting) counts as "not yet"; the last one
    is named if time runs out."""
    deadline = time.monotonic() + timeout
    last_error: httpx.TransportError | None = None
    while True:
        try:
            if condition():
                return
        except httpx.TransportError as exc:
            last_error = exc
        assert time.monotonic() < deadline, (
            f"{what} within {timeout} s (last error: {last_error!r})"
        )
        time.sleep(0.02)


def index_polls(base: str) -> int:
    """How many looks at `CURRENT` the server at `base` has finished (its /metrics)."""
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    found = re.search(r"^recommender_index_polls_total (\S+)$", metrics, re.MULTILINE)
    assert found, "no recommender_index_polls_total in /metrics"
    return int(float(found.group(1)))


def wait_for_polls(base: str, count: int = 3) -> None:
    """Wait until the server's watcher has looked at `CURRENT` `count` more times, so that
    whatever it would do about a change it has done (instead of a guessed sleep)."""
    start = index_polls(base)
    wait_for(lambda: index_polls(base) >= start + count, f"{count} more index polls")
