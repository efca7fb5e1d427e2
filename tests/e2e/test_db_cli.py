"""`recommender db upgrade` and `recommender db import --from-sqlite`: a host that ran on SQLite
moves its live changes, overrides and audit trail into PostgreSQL, and a second run changes
nothing."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from index.state.curation_store import CurationStore
from index.state.live_store import LiveStore
from index.state.state_stores import StateStores, open_stores
from tests.support.helpers import fake_settings, run_cli

pytestmark = pytest.mark.postgres
VECTOR = np.array([0.6, 0.8], dtype=np.float32)


def recommender(*args: str, database_url: str | None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={"RECOMMENDER_DATABASE_URL": database_url})


def state_of(stores: StateStores) -> dict[str, object]:
    """What the stores hold, without the numbering that differs between databases."""
    audit = stores.curation.audit()
    ids = {record.id: index for index, record in enumerate(reversed(audit))}
    return {
        "live": [(e.slug, e.retracted, e.record, e.model_id) for e in stores.live.entries()],
        "pins": [(p.source, p.target, p.slot, p.reason, p.actor) for p in stores.curation.pins()],
        "blocks": [(b.source, b.target, b.reason) for b in stores.curation.blocks()],
        "audit": [
            (r.actor, r.action, r.source, r.target, ids.get(r.undone_by or -1)) for r in audit
        ],
    }


def test_a_sqlite_host_moves_into_postgres_once(postgres_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "sqlite-host"
    live = LiveStore.in_directory(data_dir)
    live.upsert("a", {"slug": "a", "title": "A"}, "m", VECTOR)
    live.retract("b")
    live.close()
    curation = CurationStore.in_directory(data_dir)
    curation.pin("a", "c", 2, None, "follow-up", "ana")
    _, blocked = curation.block(None, "d", "legal hold", "ben")
    _, pinned = curation.pin("a", "e", 1, None, None, "ana")
    undo = curation.undo(pinned.id, "cy")
    curation.undo(undo.id, "ana")
    curation.close()
    expected = state_of(open_stores(fake_settings(data_dir).index))

    first = recommender("db", "import", "--from-sqlite", str(data_dir), database_url=postgres_url)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"imported": {"live": 2, "pins": 2, "blocks": 1, "audit": 5}}
    shared = open_stores(fake_settings(tmp_path / "pg-host", database_url=postgres_url).index)
    try:
        assert state_of(shared) == expected
        again = recommender(
            "db", "import", "--from-sqlite", str(data_dir), database_url=postgres_url
        )
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout) == {
            "imported": {"live": 0, "pins": 0, "blocks": 0, "audit": 0}
        }
        assert state_of(shared) == expected
        shared.curation.undo(blocked.id, "dan")  # the ids were renumbered consistently
    finally:
        shared.close()


def test_upgrade_applies_each_migration_once(postgres_url: str) -> None:
    first = recommender("db", "upgrade", database_url=postgres_url)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"applied": [1, 2, 3, 4, 5], "schema_version": 5}
    again = recommender("db", "upgrade", database_url=postgres_url)
    assert json.loads(again.stdout) == {"applied": [], "schema_version": 5}


def test_db_commands_say_what_is_wrong_in_one_line_without_credentials() -> None:
    unset = recommender("db", "upgrade", database_url=None)
    assert unset.returncode == 2
    assert "RECOMMENDER_DATABASE_URL is not set" in unset.stderr
    started = time.monotonic()
    unreachable = run_cli(
        "db",
        "upgrade",
        env={
            "RECOMMENDER_DATABASE_URL": "postgresql://editor:s3cret-pw@127.0.0.1:1/related",
            "RECOMMENDER_DATABASE_OPEN_TIMEOUT_SECONDS": "3",
        },
    )
    assert unreachable.returncode == 69
    assert time.monotonic() - started >= 3  # a database restarting is waited for
    assert unreachable.stderr.count("\n") == 1
    assert "s3cret-pw" not in unreachable.stderr + unreachable.stdout
