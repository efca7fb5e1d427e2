"""Opening the shared database waits longer than a call may: for another host's migration (or a
database just created, or busy), up to `RECOMMENDER_DATABASE_OPEN_TIMEOUT_SECONDS`; then the
pool's connections are back on the per-call bounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from index.index_errors import StoreUnavailable
from index.state.postgres_database import MIGRATION_LOCK, PostgresState
from recommender.settings import DatabaseSettings

pytestmark = pytest.mark.postgres
HELD_SECONDS = 3.0


@pytest.fixture
def migrating_host(postgres_url: str) -> Iterator[psycopg.Connection[object]]:
    """Another host's connection holding the migration lock."""
    with psycopg.connect(postgres_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        yield other


def test_a_host_waits_out_another_hosts_migration_then_calls_keep_their_bound(
    postgres_url: str, migrating_host: psycopg.Connection[object]
) -> None:
    release = threading.Timer(
        HELD_SECONDS,
        lambda: migrating_host.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,)),
    )
    release.start()
    started = time.monotonic()
    try:
        state = PostgresState(
            DatabaseSettings(
                database_url=postgres_url,
                database_timeout_seconds=1,
                database_open_timeout_seconds=30,
            )
        )
    finally:
        release.join()
    try:
        assert time.monotonic() - started >= HELD_SECONDS - 0.5  # it did wait for the lock
        assert state.schema_version() > 0
        with state.connection() as conn:
            bounds = (
                conn.execute("SHOW statement_timeout").fetchone(),
                conn.execute("SHOW lock_timeout").fetchone(),
            )
        assert bounds == (("1s",), ("1s",))
    finally:
        state.close()


def test_a_migration_held_past_the_open_timeout_is_a_clear_failure(
    postgres_url: str, migrating_host: psycopg.Connection[object]
) -> None:
    settings = DatabaseSettings(
        database_url=postgres_url, database_timeout_seconds=1, database_open_timeout_seconds=2
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="shared database is unavailable"):
        PostgresState(settings)
    assert time.monotonic() - started >= 1.5  # the open timeout, not the call's
