"""What every benchmark shares: its error and its text tables (its one-line failure is the
CLI's, `api.cli.cli_toolkit.fail`)."""

from __future__ import annotations

from collections.abc import Sequence

import typer


class BenchError(Exception):
    """A benchmark that cannot run or cannot be trusted; the message says why."""


def say(message: str) -> None:
    """A progress line, on stderr: stdout keeps the result (the table or `--json`)."""
    typer.echo(message, err=True)


def format_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    )
