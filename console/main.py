"""Entry point of the `recommender` console script."""

from __future__ import annotations

import sys
import time

import typer
from pydantic import ValidationError

from api.cli.commands import app
from bench.bench_cli import add_benchmarks
from recommender.settings import env_names, setting_names

__all__ = ["app", "main", "settings_problems"]  # `app`: the CLI with the benchmarks added

add_benchmarks(app)


def settings_problems(error: ValidationError) -> list[str]:
    """One line per invalid setting, named by its environment variable (its command-line
    option, when it has one, sets the same value)."""
    known = set(setting_names())
    lines = []
    for problem in error.errors(include_url=False):
        message = str(problem["msg"]).removeprefix("Value error, ")
        name = env_names(str(problem["loc"][-1]))[0] if problem["loc"] else ""
        if name not in known:  # a rule over several settings: its message names them
            lines.append(message)
            continue
        lines.append(f"{name} = {problem.get('input')!r}: {message}")
    return lines


def main() -> None:
    """Run the CLI; Ctrl-C ends it with one line and exit 130, an invalid setting with one line
    per problem and exit 2 (bad input), never a traceback."""
    started = time.monotonic()
    try:
        app()
    except KeyboardInterrupt:
        typer.echo(f"recommender: interrupted after {time.monotonic() - started:.1f}s", err=True)
        sys.exit(130)
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        for line in settings_problems(exc):
            typer.echo(f"recommender: error: invalid setting: {line}", err=True)
        sys.exit(2)
