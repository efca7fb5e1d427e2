"""Opening the shared database waits longer than a call may: for another host's migration (or a
database just created, or busy), up to `RECOMMENDER_DATABASE_OPEN_TIMEOUT_SECONDS`; then the
pool's connections are back on the per-call bounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from bench.throwaway_database import throwaway_database
from index.index_errors import StoreUnavailable
from index.state.postgres_database import MIGRATION_LOCK, PostgresState, migrations
from recommender.settings import DatabaseSettings
from tests.support.postgres_server import ADMIN_URL as POSTGRES_ADMIN_URL

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


def open_at_once(url: str, hosts: int) -> tuple[list[PostgresState], list[BaseException]]:
    """`hosts` processes' states opened on `url` at the same moment: (opened, failures)."""
    settings = DatabaseSettings(database_url=url, database_timeout_seconds=1)
    start = threading.Barrier(hosts)
    opened: list[PostgresState] = []
    failures: list[BaseException] = []

    def open_host() -> None:
        start.wait()
        try:
            opened.append(PostgresState(settings))
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=open_host) for _ in range(hosts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return opened, failures


def test_hosts_opening_a_new_database_at_once_apply_each_migration_once() -> None:
    # Before 2026-12-07 the lock went before the migrations were committed (they ran as
    # savepoints of the transaction that read `schema_version`): a host waiting on it then
    # applied them again ("relation already exists"), in one race of four to six here.
    for _ in range(5):
        with throwaway_database(POSTGRES_ADMIN_URL, prefix="test") as url:
            opened, failures = open_at_once(url, hosts=4)
            try:
                assert not failures
                rows = opened[0].execute("SELECT version FROM schema_version ORDER BY 1", ())
                assert [v for (v,) in rows] == [version for version, _ in migrations()]
            finally:
                for state in opened:
                    state.close()
