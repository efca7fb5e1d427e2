"""`recommender events ...`: the impression log for analysts (docs/learning.md)."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from api.cli.cli_toolkit import DataDirOption, fail, print_json, run_command
from recommender.settings import Settings

events_app = typer.Typer(
    help="The impression log: every accepted impression and click (docs/learning.md).",
    no_args_is_help=True,
)


class Format(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"


def parse_day(value: str, option: str) -> date:
    """A `--since`/`--until` UTC day; exit 2 when it is not one."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r} is not a date (YYYY-MM-DD)", 2) from None


@events_app.command(
    epilog="Examples:\n\n"
    "  recommender events export --since 2026-12-01 --format parquet --output week.parquet\n\n"
    "  recommender events export --since 2026-12-01 --until 2026-12-07 --format jsonl "
    "--output week.jsonl"
)
def export(
    since: Annotated[
        str, typer.Option(metavar="DATE", help="First UTC day to export (YYYY-MM-DD).")
    ],
    output: Annotated[
        Path, typer.Option(metavar="PATH", help="File to write (replaced once complete).")
    ],
    until: Annotated[
        str | None,
        typer.Option(metavar="DATE", help="Last UTC day to export, included (default: today)."),
    ] = None,
    format_: Annotated[
        Format, typer.Option("--format", help="jsonl (one event a line) or parquet.")
    ] = Format.jsonl,
    data_dir: DataDirOption = None,
) -> None:
    """Write the impression log's events of some days to a file, streaming: the shared
    database's when RECOMMENDER_DATABASE_URL is set, else the data directory's files."""
    from tqdm import tqdm

    from api.event_log.event_log_export import export_events
    from api.event_log.event_log_factory import open_event_log
    from index.state.postgres_database import PostgresState

    first = parse_day(since, "--since")
    last = parse_day(until, "--until") if until else datetime.now(UTC).date()
    if last < first:
        raise fail(f"--until {last} is before --since {first}", 2)
    settings = Settings(data_dir=data_dir) if data_dir else Settings()

    def write() -> int:
        database = settings.index.database
        postgres = PostgresState(database) if database.url is not None else None
        try:
            log = open_event_log(settings.data_dir, postgres)
            events = tqdm(log.read(first, last), unit=" events", disable=not sys.stderr.isatty())
            return export_events(events, output, format_.value)
        finally:
            if postgres is not None:
                postgres.close()

    count = run_command(write)
    print_json({"exported": count, "since": str(first), "until": str(last), "output": str(output)})
