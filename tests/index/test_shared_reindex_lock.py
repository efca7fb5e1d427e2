"""Reindexes on two hosts sharing one PostgreSQL: while one holds the shared database's lock,
the other refuses at once (exit 75 on the command line) and changes nothing; once it is free,
the other runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.index_errors import ReindexLocked
from index.state.postgres_database import REINDEX_LOCK
from index.state.state_stores import open_stores
from index.versions.reindex_pipeline import reindex
from index.versions.version_store import VersionStore
from recommender.encoding.hashing_encoder import HashingEncoder
from tests.support.helpers import REPO, fake_settings, synthetic_records, write_jsonl

pytestmark = pytest.mark.postgres


def test_a_reindex_on_another_host_is_refused_while_the_shared_lock_is_held_then_runs(
    postgres_url: str, tmp_path: Path
) -> None:
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records())
    host_a = fake_settings(tmp_path / "host-a", database_url=postgres_url).index
    host_b = fake_settings(tmp_path / "host-b", database_url=postgres_url).index
    holder = open_stores(host_a)
    try:
        assert holder.postgres is not None
        with holder.postgres.exclusive(REINDEX_LOCK) as taken:
            assert taken
            with pytest.raises(ReindexLocked):
                reindex(host_b, [feed], HashingEncoder())
            job = subprocess.run(
                [sys.executable, "-m", "console", "reindex", "--source", str(feed)],
                env={**os.environ, "RECOMMENDER_MODEL": "fake-hashing",
                     "RECOMMENDER_DATA_DIR": str(host_b.data_dir),
                     "RECOMMENDER_DATABASE_URL": postgres_url},
                cwd=REPO, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert job.returncode == 75, job.stderr
            assert VersionStore(host_b.data_dir).version_ids() == []
    finally:
        holder.close()
    assert reindex(host_b, [feed], HashingEncoder()).published
