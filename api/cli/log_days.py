"""The `--since` / `--until` options of the commands that read the impression log by UTC day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer

from api.cli.cli_toolkit import fail

SinceOption = Annotated[
    str, typer.Option(metavar="DATE", help="First UTC day of the log to read (YYYY-MM-DD).")
]
UntilOption = Annotated[
    str | None,
    typer.Option(metavar="DATE", help="Last UTC day, included (default: today)."),
]


def parse_day(value: str, option: str) -> date:
    """A `--since`/`--until` UTC day; exit 2 when it is not one."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r} is not a date (YYYY-MM-DD)", 2) from None


def day_range(since: str, until: str | None) -> tuple[date, date]:
    """The first and last day the options name (`until` defaults to today, UTC); exit 2 when a
    value is not a date or the range is empty."""
    first = parse_day(since, "--since")
    last = parse_day(until, "--until") if until else datetime.now(UTC).date()
    if last < first:
        raise fail(f"--until {last} is before --since {first}", 2)
    return first, last
