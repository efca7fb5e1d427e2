"""A PostgreSQL database of a run's own (a benchmark's, a test's), created on a server and
dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from bench.report import BenchError

#: The machine's server (trust auth), the default of the benchmarks' `--server`.
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


class DatabaseUnavailableError(BenchError):
    """The server cannot be reached, or refuses to create the database."""


@contextmanager
def throwaway_database(server_url: str, prefix: str = "bench") -> Iterator[str]:
    """A new empty database `<prefix>_<random>` on `server_url`, dropped (connections and all)
    afterwards; yields its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise DatabaseUnavailableError(f"cannot create a database on {server_url}: {exc}") from None
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
