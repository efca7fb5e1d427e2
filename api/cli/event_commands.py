"""`recommender events ...`: the impression log for analysts (docs/learning.md)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from api.cli.cli_toolkit import DataDirOption, print_json, run_command
from api.cli.log_days import SinceOption, UntilOption, day_range
from recommender.settings import Settings

events_app = typer.Typer(
    help="The impression log: every accepted impression and click (docs/learning.md).",
    no_args_is_help=True,
)


class Format(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"


@events_app.command(
    epilog="Examples:\n\n"
    "  recommender events export --since 2026-12-01 --format parquet --output week.parquet\n\n"
    "  recommender events export --since 2026-12-01 --until 2026-12-07 --format jsonl "
    "--output week.jsonl"
)
def export(
    since: SinceOption,
    output: Annotated[
        Path, typer.Option(metavar="PATH", help="File to write (replaced once complete).")
    ],
    until: UntilOption = None,
    format_: Annotated[
        Format, typer.Option("--format", help="jsonl (one event a line) or parquet.")
    ] = Format.jsonl,
    data_dir: DataDirOption = None,
) -> None:
    """Write the impression log's events of some days to a file, streaming: the shared
    database's when RECOMMENDER_DATABASE_URL is set, else the data directory's files."""
    from tqdm import tqdm

    from api.event_log.event_log_export import export_events
    from api.event_log.event_log_factory import settings_event_log

    first, last = day_range(since, until)
    settings = Settings(data_dir=data_dir) if data_dir else Settings()

    def write() -> int:
        with settings_event_log(settings) as log:
            events = tqdm(log.read(first, last), unit=" events", disable=not sys.stderr.isatty())
            return export_events(events, output, format_.value)

    count = run_command(write)
    print_json({"exported": count, "since": str(first), "until": str(last), "output": str(output)})
