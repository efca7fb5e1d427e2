"""`recommender bench all`: the API, reindex, backend and catalog benchmarks, each in its own
process, in one table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from api.cli.cli_toolkit import JsonOption, fail, print_json
from bench import backend_bench, catalog_bench, reindex_bench
from bench.api_bench import TARGETS, Result
from bench.report import format_rows

EXAMPLES = (
    "Examples:\n\n  recommender bench all   (make bench; about half an hour on 2 cores)\n\n"
    "  recommender bench all --texts 500 --catalog-size 100000 --api-duration 5"
)


def bench_all(
    texts: Annotated[
        int,
        typer.Option(
            metavar="N", min=1, help="Articles of the reindex benchmark (bench reindex --limit)."
        ),
    ] = 2000,
    source: Annotated[
        Path | None,
        typer.Option(
            metavar="FEED", help="Feed of the reindex benchmark (default: its own default)."
        ),
    ] = None,
    catalog_size: Annotated[
        int,
        typer.Option(
            metavar="N", min=2, help="Vectors of the synthetic catalog (bench catalog --size)."
        ),
    ] = 1_000_000,
    catalog_queries: Annotated[
        int,
        typer.Option(
            metavar="N", min=1, help="Held-out catalog queries (bench catalog --queries)."
        ),
    ] = 1000,
    api_duration: Annotated[
        int,
        typer.Option(metavar="N", min=2, help="Seconds per API variant (bench api --duration)."),
    ] = 10,
    api_rounds: Annotated[
        int, typer.Option(metavar="N", min=1, help="API rounds (bench api --rounds).")
    ] = 1,
    wrk: Annotated[
        str, typer.Option(metavar="TEXT", help="The wrk executable (bench api --wrk).")
    ] = "wrk",
    ray: Annotated[
        bool,
        typer.Option(
            "--ray/--no-ray",
            help="Time each encoder backend on a local Ray instance too (bench backends --ray).",
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Run the API, reindex, encoder-backend and catalog benchmarks, each in its own process;
    print one table."""
    reindex_args = ["--limit", str(texts), *(["--source", str(source)] if source else [])]
    reports = {
        "api": _bench_child(["api", "--duration", str(api_duration), "--rounds",
                             str(api_rounds), "--wrk", wrk]),
        "reindex": _bench_child(["reindex", *reindex_args]),
        "backends": _bench_child(["backends", "--ray" if ray else "--no-ray"]),
        "catalog": _bench_child(["catalog", "--size", str(catalog_size), "--queries",
                                 str(catalog_queries)]),
    }  # fmt: skip
    if as_json:
        print_json(reports)
        return
    rows = []
    for result in (Result(**r) for r in reports["api"]["results"]):
        target = TARGETS.get(result.variant)
        ratio = result.ratio_to_ceiling or 0.0
        rows.append(
            ["api", f"{result.variant} req/s (p50 / p99 ms)",
             f"{result.requests_per_second:,.0f} ({result.p50_ms:.2f} / {result.p99_ms:.2f})",
             "-" if target is None else f">= {target:g} x ceiling: "
             f"{'met' if ratio >= target else 'NOT met'} ({ratio:.2f})"]
        )  # fmt: skip
    reindexed = reindex_bench.ReindexResult(**reports["reindex"]["result"])
    rows += [["reindex", *row] for row in reindex_bench.table_rows(reindexed)]
    backends = [backend_bench.BackendRow(**row) for row in reports["backends"]["rows"]]
    rows += [["backends", *row] for row in backend_bench.table_rows(backends)]
    catalog = catalog_bench.CatalogResult(**reports["catalog"]["result"])
    rows += [["catalog", *row] for row in catalog_bench.table_rows(catalog)]
    typer.echo(format_rows(["bench", "measure", "value", "target"], rows))


def _bench_child(args: list[str]) -> Any:
    """`recommender bench ARGS --json` in a child process (its progress goes to stderr)."""
    command = [sys.executable, "-m", "console", "bench", *args, "--json"]
    completed = subprocess.run(command, stdout=subprocess.PIPE, check=False)
    if completed.returncode != 0:
        raise fail(f"recommender bench {args[0]} failed (exit {completed.returncode})", 1)
    return orjson.loads(completed.stdout)
