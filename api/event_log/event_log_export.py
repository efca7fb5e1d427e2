"""`recommender events export`: the impression log written out for analysts, as JSON Lines or
Parquet, streamed (at most `ROWS_PER_GROUP` events in memory at a time)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import orjson

from api.event_log.logged_events import LoggedEvent

ExportFormat = Literal["jsonl", "parquet"]
#: Events per Parquet row group (and per JSONL write).
ROWS_PER_GROUP = 50_000


def exported(event: LoggedEvent) -> dict[str, Any]:
    """An event as the export writes it: `at` as an ISO-8601 UTC time."""
    record = event.record()
    record["at"] = datetime.fromtimestamp(event.at, UTC).isoformat().replace("+00:00", "Z")
    return record


def export_events(events: Iterable[LoggedEvent], output: Path, fmt: ExportFormat) -> int:
    """Write `events` to `output` (replaced once complete); returns how many were written."""
    draft = output.with_name(f".{output.name}.partial")
    try:
        count = (_write_parquet if fmt == "parquet" else _write_jsonl)(events, draft)
        draft.replace(output)
    finally:
        draft.unlink(missing_ok=True)
    return count


def _groups(events: Iterable[LoggedEvent]) -> Iterator[list[LoggedEvent]]:
    iterator = iter(events)
    while group := list(islice(iterator, ROWS_PER_GROUP)):
        yield group


def _write_jsonl(events: Iterable[LoggedEvent], path: Path) -> int:
    count = 0
    with path.open("wb") as file:
        for group in _groups(events):
            file.write(b"".join(orjson.dumps(exported(e)) + b"\n" for e in group))
            count += len(group)
    return count


def _write_parquet(events: Iterable[LoggedEvent], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("type", pa.string()),
            ("at", pa.timestamp("us", tz="UTC")),
            ("source", pa.string()),
            ("impression", pa.string()),
            ("position", pa.int32()),
            ("target", pa.string()),
            ("placement", pa.string()),
            ("arm", pa.string()),
            ("version", pa.string()),
            ("propensity", pa.float64()),
        ]
    )
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for group in _groups(events):
            columns: dict[str, list[Any]] = {name: [] for name in schema.names}
            for event in group:
                for name, value in event.record().items():
                    columns[name].append(value)
            columns["at"] = [datetime.fromtimestamp(at, UTC) for at in columns["at"]]
            writer.write_table(pa.table(columns, schema=schema))
            count += len(group)
    return count
