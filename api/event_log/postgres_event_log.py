"""The impression log in the shared PostgreSQL database (`event_log`, migration 0003): the
backend of hosts with `RECOMMENDER_DATABASE_URL`. Inserts skip rows already logged
(`ON CONFLICT DO NOTHING`), so every host may write the same beacon and one row remains;
retention deletes whole days through the `day` index."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

from api.event_log.logged_events import LoggedEvent, utc_day
from index.state.postgres_database import PostgresState

_COLUMNS = "type, at, source, impression, position, target, placement, arm, version, propensity"
_INSERT = (
    f"INSERT INTO event_log ({_COLUMNS}, day) "
    "SELECT * FROM unnest(%s::text[], %s::float8[], %s::text[], %s::text[], %s::int[], "
    "%s::text[], %s::text[], %s::text[], %s::text[], %s::float8[], %s::date[]) "
    "ON CONFLICT DO NOTHING"
)
#: Rows fetched per round trip while streaming a read.
FETCH_ROWS = 5000


class PostgresEventLog:
    """`EventLog` over the `event_log` table of `postgres` (whose pool it shares)."""

    def __init__(self, postgres: PostgresState) -> None:
        self._postgres = postgres

    def write(self, events: Sequence[LoggedEvent]) -> int:
        if not events:
            return 0
        columns = [
            [e.type for e in events],
            [e.at for e in events],
            [e.source for e in events],
            [e.impression for e in events],
            [e.position for e in events],
            [e.target for e in events],
            [e.placement for e in events],
            [e.arm for e in events],
            [e.version for e in events],
            [e.propensity for e in events],
            [e.day for e in events],
        ]
        with self._postgres.connection() as conn:
            return conn.execute(_INSERT, columns).rowcount

    def read(self, since: date, until: date) -> Iterator[LoggedEvent]:
        # The (day, at) index gives the order: rows stream from a server-side cursor, unsorted.
        return self._stream("day BETWEEN %s AND %s", (since, until))

    def read_since(self, since: float) -> Iterator[LoggedEvent]:
        # The day bound lets the (day, at) index skip the earlier days.
        return self._stream("day >= %s AND at >= %s", (utc_day(since), since))

    def _stream(self, where: str, values: tuple[object, ...]) -> Iterator[LoggedEvent]:
        with (
            self._postgres.connection() as conn,
            conn.transaction(),
            conn.cursor(name="event_log_export") as cursor,
        ):
            cursor.itersize = FETCH_ROWS
            cursor.execute(
                f"SELECT {_COLUMNS} FROM event_log WHERE {where} ORDER BY day, at", values
            )
            for row in cursor:
                yield LoggedEvent(*row)

    def clicks_read_since(self, since: float) -> Iterator[LoggedEvent]:
        # Through the partial index of clicks by time (migration 0004).
        return self._stream("type = 'click' AND at >= %s", (since,))

    def prune(self, first_kept: date) -> int:
        with self._postgres.connection() as conn:
            return conn.execute("DELETE FROM event_log WHERE day < %s", (first_kept,)).rowcount

    def close(self) -> None:
        """The pool is the `PostgresState`'s: closed with it."""
