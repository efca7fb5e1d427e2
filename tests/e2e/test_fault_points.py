"""Crashes at named points (`RECOMMENDER_FAULT_POINT`, recommender/fault_points.py): the process
kills itself exactly there, so each crash is replayed the same way every run, and its exit
(-9, SIGKILL) proves the point was reached. After each, what is served is a complete, verified
version with every live change in force, and the next run completes and cleans up.

The random kills of test_reindex_interrupted.py stay as a stress test; these are the replayable
ones: a reindex killed after each stage (read, embed, analyse, index, fit, neighbours), with its
version staged, committed but not published, published but its absorbed live upserts not
retired, retired but not pruned; and the API killed after a live change is committed, before it
answers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from index.serving.version_loader import load_current
from index.state.state_stores import open_stores
from index.versions.compact_catalog import SCRATCH_DIR
from index.versions.version_store import STAGING_PREFIX, VersionStore
from recommender.encoding.encoder_protocol import FAKE_MODEL
from recommender.fault_points import POINTS
from recommender.settings import Settings
from tests.support.helpers import ADMIN_TOKEN, REPO, fake_settings, synthetic_records, write_jsonl
from tests.support.processes import ServeProcess

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: Reindex points before CURRENT flips: the version served before the run stays served.
BEFORE_PUBLISHING = [
    "reindex-read",
    "reindex-embedded",
    "reindex-analysed",
    "reindex-indexed",
    "reindex-fitted",
    "reindex-neighboured",
    "reindex-staged",
    "reindex-committed",
]
AFTER_PUBLISHING = ["reindex-published", "reindex-retired"]
CORRECTED = "Volcano: a corrected headline"
FEED_TITLE = synthetic_records()[0]["title"]
LIVE_ONLY = {"slug": "live-only", "title": "Volcano erupts again near the airport"}


def settings_for(data_dir: Path) -> Settings:
    return fake_settings(data_dir, admin_token=ADMIN_TOKEN, redis_url=None)


def reindex(
    data_dir: Path, feed: Path, point: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    env.pop("REDIS_URL", None)
    env.update(RECOMMENDER_MODEL=FAKE_MODEL, RECOMMENDER_DATA_DIR=str(data_dir))
    if point is not None:
        env["RECOMMENDER_FAULT_POINT"] = point
    return subprocess.run(
        [sys.executable, "-m", "console", "reindex", "--source", str(feed)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def staging_left(data_dir: Path) -> bool:
    return any((data_dir / "versions").glob(f"{STAGING_PREFIX}*"))


def scratch_left(data_dir: Path) -> bool:
    return (data_dir / SCRATCH_DIR).exists()


@pytest.fixture(scope="module")
def served_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data dir serving the synthetic corpus, with two live changes pending: a correction of a
    feed article (the next build absorbs and retires it) and a live-only article. Built once;
    each test crashes a copy of its own (`served`)."""
    root = tmp_path_factory.mktemp("served")
    data_dir = root / "data"
    records = synthetic_records()
    first = reindex(data_dir, write_jsonl(root / "first.jsonl", records))
    assert first.returncode == 0, first.stderr
    with TestClient(create_app(settings_for(data_dir))) as client:
        assert records[0]["slug"] == "volcano-0" and records[0]["title"] == FEED_TITLE
        correction = {**records[0], "title": CORRECTED}
        assert client.put(f"/v1/articles/{records[0]['slug']}", json=correction, headers=AUTH)
        assert client.put("/v1/articles/live-only", json=LIVE_ONLY, headers=AUTH).status_code == 200
    return data_dir, json.loads(first.stdout)["version"]


@pytest.fixture
def served(served_once: tuple[Path, str], tmp_path: Path) -> tuple[Path, str, Path]:
    """A copy of `served_once`'s data dir (no process has it open), its version, and the feed
    of the next build (one article more)."""
    template, version = served_once
    data_dir = shutil.copytree(template, tmp_path / "data", symlinks=True)
    records = synthetic_records()
    records.append({**records[1], "slug": "volcano-next", "title": "Volcano: the next day"})
    return data_dir, version, write_jsonl(tmp_path / "next.jsonl", records)


def assert_whole(data_dir: Path, version: str, first_title: str) -> None:
    """`version` is served, verified, with the live-only article, volcano-0 titled
    `first_title` and every list answering."""
    loaded, warning = load_current(settings_for(data_dir).index)
    assert warning is None and loaded.id == version
    with TestClient(create_app(settings_for(data_dir))) as client:
        assert client.get("/v1/index").json()["version"] == version
        assert client.get("/v1/articles/live-only").json()["title"] == LIVE_ONLY["title"]
        assert client.get("/v1/articles/volcano-0").json()["title"] == first_title
        related = client.get("/v1/articles/volcano-0/related", params={"limit": 10}).json()
        slugs = [item["slug"] for item in related["items"]]
        assert len(slugs) == len(set(slugs)) and "live-only" in slugs  # served once, not twice


def test_every_reindex_point_is_tested() -> None:
    reindex_points = {point for point in POINTS if point.startswith("reindex-")}
    assert reindex_points == set(BEFORE_PUBLISHING + AFTER_PUBLISHING)


@pytest.mark.parametrize("point", BEFORE_PUBLISHING + AFTER_PUBLISHING)
def test_a_reindex_killed_at_a_point_leaves_a_whole_catalog_and_the_next_run_completes(
    served: tuple[Path, str, Path], point: str
) -> None:
    data_dir, before, feed = served
    killed = reindex(data_dir, feed, point)
    assert killed.returncode == -signal.SIGKILL, f"{point} was not reached:\n{killed.stderr}"
    store = VersionStore(data_dir)
    if point in BEFORE_PUBLISHING:  # the correction is still live, over the old version
        assert_whole(data_dir, before, CORRECTED)
        assert staging_left(data_dir) == (point == "reindex-staged")
        # killed before its version was committed: the scratch directory is the next run's
        assert scratch_left(data_dir) == (point != "reindex-committed")
    else:  # the feed is authoritative once its version is published
        assert store.current_id() != before
        assert_whole(data_dir, store.current_id(), FEED_TITLE)

    again = reindex(data_dir, feed)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["indexed"] == 20  # 19 feed articles and the live-only one
    # the killed run's embeddings were kept (once it had embedded the one new article)
    assert summary["embedded"] == (1 if point == "reindex-read" else 0)
    assert_whole(data_dir, store.current_id(), FEED_TITLE)
    assert not staging_left(data_dir) and not scratch_left(data_dir)
    stores = open_stores(settings_for(data_dir).index)
    try:  # the absorbed correction was retired, by the killed run or by this one
        assert [entry.slug for entry in stores.live.upserted()] == ["live-only"]
    finally:
        stores.close()


@pytest.mark.parametrize("change", ["upsert", "retraction"])
def test_a_live_change_committed_before_the_api_died_is_in_force_after_a_restart(
    served: tuple[Path, str, Path], tmp_path: Path, change: str
) -> None:
    data_dir, _, _ = served
    env = {
        "RECOMMENDER_DATA_DIR": str(data_dir),
        "RECOMMENDER_MODEL": FAKE_MODEL,
        "RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    crashing = ServeProcess(
        {**env, "RECOMMENDER_FAULT_POINT": "live-committed"}, tmp_path / "a.log"
    )
    crashing.start()
    try:
        with pytest.raises(httpx.TransportError):  # it died before answering
            if change == "upsert":
                body = {"title": "Lava reaches the harbour", "section": "World"}
                httpx.put(f"{crashing.url}/v1/articles/late-news", json=body, headers=AUTH)
            else:
                httpx.delete(f"{crashing.url}/v1/articles/volcano-1", headers=AUTH)
        assert crashing.wait_exit() == -signal.SIGKILL
    finally:
        crashing.close()
    with ServeProcess(env, tmp_path / "b.log") as restarted:
        if change == "upsert":
            card = httpx.get(f"{restarted.url}/v1/articles/late-news", timeout=10)
            assert card.status_code == 200 and card.json()["title"] == "Lava reaches the harbour"
        else:
            gone = httpx.get(f"{restarted.url}/v1/articles/volcano-1", timeout=10)
            assert gone.status_code == 404
            related = httpx.get(f"{restarted.url}/v1/articles/volcano-0/related", timeout=10)
            assert "volcano-1" not in [item["slug"] for item in related.json()["items"]]


def test_an_unknown_fault_point_is_refused(tmp_path: Path) -> None:
    result = reindex(tmp_path / "data", REPO / "demo" / "articles.jsonl", "nowhere")
    assert result.returncode == 2 and "unknown fault point 'nowhere'" in result.stderr
