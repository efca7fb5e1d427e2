"""A disk that fills up during a reindex: a clear error, exit 74, nothing published, and the next
run (with room again) completes.

The full disk is a real operating-system write failure in a real `recommender reindex`
process: its file-size limit (`RLIMIT_FSIZE`) is set below the size of one file it must write,
with SIGXFSZ ignored, so that write fails with EFBIG as a full disk fails with ENOSPC. Smaller
writes (the lock, SQLite's journal) still succeed, so each case fails at one chosen place.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from index.versions.version_store import VersionStore
from tests.e2e.test_reindex_interrupted import CLI, big_feed, served_titles, staging_exists
from tests.support.helpers import REPO, build_fake_index, write_jsonl

#: Articles of the feeds; each of their version files is 150 to 530 kB.
COUNT = 1000


def reindex_limited(
    feed: Path, data_dir: Path, limit: int | None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`recommender reindex` in a child whose files cannot grow beyond `limit` bytes."""

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    child_env = {
        **os.environ,
        "RECOMMENDER_MODEL": "fake-hashing",
        "RECOMMENDER_DATA_DIR": str(data_dir),
        **env,
    }
    child_env.pop("REDIS_URL", None)
    return subprocess.run(
        [*CLI, "reindex", "--source", str(feed)],
        cwd=REPO,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=limit_file_size,
    )


def read_records(feed: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in feed.read_text().splitlines()]


@pytest.mark.parametrize(
    ("case", "limit", "env", "message"),
    [
        # np.save of vectors.npy (256 kB), the first file written
        ("version files", 150_000, {}, "cannot write a new version in"),
        # an HNSW index: vectors.npy fits, FAISS's own writer fails on index.faiss (528 kB)
        (
            "faiss index",
            400_000,
            {"RECOMMENDER_EXACT_SEARCH_MAX": "100", "RECOMMENDER_ANN_INDEX": "hnsw"},
            "index.faiss",
        ),
        # new articles: the embedding cache's SQLite journal outgrows the limit
        ("embedding cache", 150_000, {}, "cannot write the embedding cache"),
    ],
)
def test_a_full_disk_fails_clearly_and_the_served_version_stays(
    tmp_path: Path, case: str, limit: int, env: dict[str, str], message: str
) -> None:
    data_dir = tmp_path / "data"
    records = read_records(big_feed(tmp_path / "feed.jsonl", COUNT))
    if case == "embedding cache":  # served: 50 of them; the run must embed the other 950
        _, first = build_fake_index(data_dir, records[:50])
        target = write_jsonl(tmp_path / "target.jsonl", records)
    else:  # served: all; the run only moves them to new URLs, so nothing needs embedding
        _, first = build_fake_index(data_dir, records)
        moved = [{**r, "url": f"https://example.com/moved/{r['slug']}"} for r in records]
        target = write_jsonl(tmp_path / "target.jsonl", moved)
    served = served_titles(data_dir)

    failed = reindex_limited(target, data_dir, limit, **env)
    assert failed.returncode == 74, failed.stderr
    error = failed.stderr.splitlines()[0]
    assert error.startswith("recommender: error: ") and "is the disk full?" in error
    assert message in error and "Traceback" not in failed.stderr
    assert failed.stdout == ""
    store = VersionStore(data_dir)
    assert store.current_id() == first.version and store.version_ids() == [first.version]
    assert served_titles(data_dir) == served  # checksums verified
    assert not staging_exists(data_dir)

    again = reindex_limited(target, data_dir, None, **env)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["published"] and summary["indexed"] == COUNT
    assert store.current_id() == summary["version"] != first.version
    if case == "embedding cache":
        assert summary["reused"] > 50  # batches committed before the disk filled were kept
    else:
        assert summary["embedded"] == 0
