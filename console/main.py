"""Entry point of the `recommender` console script."""

from __future__ import annotations

import sys
import time

import typer

from api.cli.commands import app
from bench.bench_cli import add_benchmarks

__all__ = ["app", "main"]  # `app`: the CLI with the benchmarks added, which tests drive

add_benchmarks(app)


def main() -> None:
    """Run the CLI; Ctrl-C ends it with one line and exit 130."""
    started = time.monotonic()
    try:
        app()
    except KeyboardInterrupt:
        typer.echo(f"recommender: interrupted after {time.monotonic() - started:.1f}s", err=True)
        sys.exit(130)
