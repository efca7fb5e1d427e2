"""Which impression log a process gets: the shared database's when there is one, else files in
the data directory."""

from __future__ import annotations

from pathlib import Path

from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import EventLog
from api.event_log.postgres_event_log import PostgresEventLog
from index.state.postgres_database import PostgresState


def open_event_log(data_dir: Path, postgres: PostgresState | None) -> EventLog:
    """A `PostgresEventLog` on `postgres` (the process's pool) when given, else a
    `FileEventLog` in `data_dir`."""
    if postgres is not None:
        return PostgresEventLog(postgres)
    return FileEventLog(data_dir)
