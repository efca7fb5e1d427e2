"""`recommender bench`: the benchmarks as subcommands of the service's CLI, each module imported
only when its command runs (or `recommender bench --help` lists them), so the console script
starts without them."""

from __future__ import annotations

import importlib

import typer
from typer._click.core import Command, Context
from typer.core import TyperGroup

from api.cli.help_format import WholeWordsContext

#: `recommender bench NAME` → the module that holds it (with its `EXAMPLES`) and its function.
BENCHMARKS = {
    "api": ("bench.api_bench", "bench_api"),
    "reindex": ("bench.reindex_bench", "bench_reindex"),
    "backends": ("bench.backend_bench", "bench_backends"),
    "catalog": ("bench.catalog_bench", "bench_catalog"),
    "ingest": ("bench.ingest_bench", "bench_ingest"),
    "live": ("bench.live_bench", "bench_live"),
    "events": ("bench.events_bench", "bench_events"),
    "propagation": ("bench.propagation_bench", "bench_propagation"),
    "archive": ("bench.archive_bench", "bench_archive"),
    "chain": ("bench.chain_bench", "bench_chain"),
    "soak": ("bench.soak", "bench_soak"),
    "learning": ("bench.learning_bench", "bench_learning"),
    "all": ("bench.bench_all", "bench_all"),
}


class BenchmarkGroup(TyperGroup):
    """The `bench` group: knows its commands' names and loads one when it is asked for."""

    context_class = WholeWordsContext

    def list_commands(self, ctx: Context) -> list[str]:
        return list(BENCHMARKS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in BENCHMARKS:
            return None
        module_name, function = BENCHMARKS[cmd_name]
        module = importlib.import_module(module_name)
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(cmd_name, epilog=module.EXAMPLES)(getattr(module, function))
        command = typer.main.get_command(single)
        command.context_class = WholeWordsContext
        return command


def add_benchmarks(cli: typer.Typer) -> None:
    """Register `recommender bench` (its subcommands load on use) on the service's CLI."""
    cli.add_typer(
        typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None),
        name="bench",
        cls=BenchmarkGroup,
        help="Benchmarks: `recommender bench "
        "api|reindex|backends|catalog|ingest|live|events|propagation|archive|chain|soak|all`.",
    )
