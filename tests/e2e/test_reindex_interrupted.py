"""A reindex killed at any moment (at chosen points, and at random ones spread over a run)
leaves the served version intact; the next run completes. A second concurrent run is refused.
Real subprocesses, SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from index.serving.version_loader import load_current
from index.versions.version_store import VersionStore
from tests.support.helpers import REPO, fake_settings, write_jsonl

CLI = [sys.executable, "-m", "console"]


def big_feed(path: Path, count: int, revision: int = 0) -> Path:
    words = [f"term{i}" for i in range(500)]
    return write_jsonl(
        path,
        [
            {
                "slug": f"article-{i}",
                "title": f"Article {i} revision {revision}",
                "body": " ".join(words[(i * 7 + j) % 500] for j in range(60)),
            }
            for i in range(count)
        ],
    )


def start_reindex(feed: Path, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RECOMMENDER_MODEL": "fake-hashing", "RECOMMENDER_DATA_DIR": str(data_dir)}
    env.pop("REDIS_URL", None)
    return subprocess.Popen(
        [*CLI, "reindex", "--source", str(feed), *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cached_embeddings(data_dir: Path) -> int:
    path = data_dir / "embeddings.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1) as db:
            return int(db.execute("SELECT count(*) FROM embeddings").fetchone()[0])
    except sqlite3.Error:
        return 0


def staging_exists(data_dir: Path) -> bool:
    versions = data_dir / "versions"
    return versions.is_dir() and any(p.name.startswith(".staging-") for p in versions.iterdir())


def wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[str], limit: float = 60
) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"reindex ended before the kill point: {err}")
        if time.monotonic() > deadline:
            raise AssertionError("kill point not reached in time")
        time.sleep(0.005)


@pytest.fixture
def served(tmp_path: Path) -> tuple[Path, str]:
    """A data dir already serving a version built from a small feed."""
    data_dir = tmp_path / "data"
    first = start_reindex(big_feed(tmp_path / "small.jsonl", 50), data_dir)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    return data_dir, VersionStore(data_dir).current_id()


@pytest.mark.parametrize("kill_point", ["mid-embedding", "mid-write"])
def test_killed_reindex_keeps_the_served_version_and_the_next_run_completes(
    served: tuple[Path, str], tmp_path: Path, kill_point: str
) -> None:
    data_dir, before = served
    feed = big_feed(tmp_path / "big.jsonl", 10_000, revision=1)
    process = start_reindex(feed, data_dir)
    if kill_point == "mid-embedding":
        wait_for(lambda: cached_embeddings(data_dir) > 50 + 256, process)
    else:
        wait_for(lambda: staging_exists(data_dir), process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)

    store = VersionStore(data_dir)
    assert store.current_id() == before
    version, warning = load_current(fake_settings(data_dir).index)
    assert warning is None and version.id == before and version.size == 50

    again = start_reindex(feed, data_dir)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    summary = json.loads(out)
    assert summary["indexed"] == 10_000 and summary["published"]
    if kill_point == "mid-embedding":
        assert summary["reused"] > 0  # work committed before the kill was kept
    else:
        assert summary["embedded"] == 0
    assert store.current_id() == summary["version"] != before
    assert not staging_exists(data_dir)  # leftovers of the killed run were cleaned up


def test_a_second_concurrent_reindex_exits_75_and_changes_nothing(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    data_dir, before = served
    feed = big_feed(tmp_path / "big.jsonl", 10_000, revision=2)
    first = start_reindex(feed, data_dir)
    wait_for(lambda: cached_embeddings(data_dir) > 50, first)
    second = start_reindex(feed, data_dir)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 75
    assert "another reindex is running" in err and out == ""
    assert VersionStore(data_dir).current_id() == before
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)


def stage_reached(data_dir: Path, current: str, versions: list[str], embedded: int) -> str:
    """Where a killed run had got to, told by what it left on disk (the named, replayable points
    are tests/e2e/test_fault_points.py's)."""
    store = VersionStore(data_dir)
    if store.current_id() != current:
        return "after publishing"
    if store.version_ids() != versions:
        return "after committing its version, before publishing"
    if staging_exists(data_dir):
        return "while writing its version"
    if cached_embeddings(data_dir) > embedded:
        return "while embedding"
    return "before embedding"


def served_titles(data_dir: Path) -> dict[str, str]:
    """Slug -> title of the published version, after verifying every file's checksum."""
    version, warning = load_current(fake_settings(data_dir).index)
    assert warning is None, warning
    return {card["slug"]: card["title"] for card in version.cards}


def feed_titles(count: int, revision: int) -> set[str]:
    """The titles of `big_feed(..., count, revision)`."""
    return {f"Article {i} revision {revision}" for i in range(count)}


def test_reindex_killed_at_random_points_never_damages_the_served_version(
    tmp_path: Path, rng: random.Random
) -> None:
    """SIGKILL at random moments spread over a whole run (start-up, reading, embedding,
    building, writing, publishing); after each, what is served is a complete verified version
    and the next run completes."""
    data_dir = tmp_path / "data"
    count = 1000
    started = time.monotonic()
    first = start_reindex(big_feed(tmp_path / "feed-0.jsonl", count), data_dir)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    run_seconds = time.monotonic() - started
    points = 5
    delays = [run_seconds * (n + rng.random()) / points for n in range(points)]
    for revision, delay in enumerate(delays, start=1):
        feed = big_feed(tmp_path / f"feed-{revision}.jsonl", count, revision)
        store = VersionStore(data_dir)
        before, versions, embedded = (
            store.current_id(),
            store.version_ids(),
            cached_embeddings(data_dir),
        )
        process = start_reindex(feed, data_dir)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        stage = stage_reached(data_dir, before, versions, embedded)
        where = f"killed {stage}, {delay:.2f} s into a {run_seconds:.2f} s run (seed in the header)"
        print(where)  # the stress test's record of where each kill landed

        # Checksums verified: never half a version, whether or not the run had published.
        served = revision if VersionStore(data_dir).current_id() != before else revision - 1
        assert set(served_titles(data_dir).values()) == feed_titles(count, served), where

        again = start_reindex(feed, data_dir)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, f"{where}: {err}"
        assert json.loads(out)["indexed"] == count
        assert set(served_titles(data_dir).values()) == feed_titles(count, revision), where
        assert not staging_exists(data_dir), where


def test_two_reindexes_started_together_publish_one_complete_version(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    count = 1000
    feeds = [big_feed(tmp_path / f"feed-{n}.jsonl", count, revision=n) for n in (1, 2)]
    runs = [start_reindex(feed, data_dir) for feed in feeds]
    results = [(run, *run.communicate(timeout=120)) for run in runs]
    codes = [run.returncode for run, _, _ in results]
    assert set(codes) <= {0, 75} and 0 in codes, [err for _, _, err in results]
    for run, out, err in results:
        if run.returncode == 75:
            assert out == "" and "another reindex is running" in err
    winners = {
        json.loads(out)["version"]: n + 1
        for n, (run, out, _) in enumerate(results)
        if run.returncode == 0
    }
    current = VersionStore(data_dir).current_id()
    assert current in winners
    assert set(served_titles(data_dir).values()) == feed_titles(count, winners[current])
