"""Which impression log a process gets: the shared database's when there is one, else files in
the data directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import EventLog
from recommender.settings import Settings

if TYPE_CHECKING:  # psycopg is imported only where a database is named: it takes 0.1-0.2 s
    from index.state.postgres_database import PostgresState


def open_event_log(data_dir: Path, postgres: PostgresState | None) -> EventLog:
    """A `PostgresEventLog` on `postgres` (the process's pool) when given, else a
    `FileEventLog` in `data_dir`."""
    if postgres is not None:
        from api.event_log.postgres_event_log import PostgresEventLog

        return PostgresEventLog(postgres)
    return FileEventLog(data_dir)


@contextmanager
def settings_event_log(settings: Settings) -> Iterator[EventLog]:
    """The log `settings` name, for one command: the shared database's, over a pool of its own
    closed on leaving, when RECOMMENDER_DATABASE_URL is set, else the data directory's files."""
    database = settings.index.database
    postgres = None
    if database.url is not None:
        from index.state.postgres_database import PostgresState

        postgres = PostgresState(database)
    try:
        yield open_event_log(settings.data_dir, postgres)
    finally:
        if postgres is not None:
            postgres.close()
