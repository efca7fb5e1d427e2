"""`make bench-api`: HTTP throughput of the related endpoint against a bare FastAPI ceiling.

One run starts the real app under uvicorn on loopback, over a real index (the bundled demo
corpus indexed with the real model, unless `--data-dir` points at one), and drives it with
`wrk` at the same workers and connections for three variants:

    ceiling    a bare FastAPI app (one route, none of the service's middleware) in the same
               server process, returning the bytes of a cached related response
    cached     GET /v1/articles/{slug}/related, cycling over a few slugs already cached
    uncached   the same requests over every slug, served by a second, identical server
               whose result cache holds one entry (and never Redis): every request misses
               and runs the ranking

Each variant gets an unmeasured warm-up first. The ceiling and the `bench` server factory
exist only here; the production app never mounts them.

wrk is used rather than a Python client because on a 2-core machine a Python load generator
takes a core's worth of CPU away from the server it measures; wrk needs a fraction of that.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from api.cli.cli_toolkit import JsonOption, fail
from bench.report import BenchError, format_rows, say
from bench.server_process import (
    DEMO_SOURCES,
    Server,
    http_get,
    index_corpus,
    index_slugs,
    run_server,
)
from bench.wrk_load import Load, Sample, require_wrk

#: The ceiling route, served by a bare FastAPI app beside the service (benchmark mode only).
CEILING_PATH = "/__bench/ceiling"


RELATED = "/v1/articles/{}/related"


VARIANTS = ("ceiling", "cached", "uncached")


#: The issue's targets on a 2-core machine: share of the ceiling's requests/s, and tail.
TARGETS = {"cached": 0.7, "uncached": 0.5}


MAX_TAIL_RATIO = 3.0


@dataclass(frozen=True, slots=True)
class Result:
    """One variant: medians over its rounds (they resist a noisy neighbour better than means)."""

    variant: str
    rounds: int
    requests: int
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    p99_over_p50: float
    errors: int
    """Socket errors, timeouts and non-2xx/3xx answers over all rounds (must be 0)."""
    cache_hit_rate: float | None
    """Share of cache lookups that hit, over every worker (None for the ceiling)."""
    server_cpu_us: float | None
    """Server CPU time (user + system, all its processes) per request, in microseconds."""
    ratio_to_ceiling: float | None = None
    """Requests/s over the ceiling's in the same round."""
    cpu_ratio_to_ceiling: float | None = None
    """The ceiling's CPU per request over this variant's: the throughput ratio a server with
    a core to itself would see, which a busy machine disturbs far less than requests/s."""


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _cpu_per_request(sample: Sample) -> float | None:
    if sample.server_cpu_seconds is None or not sample.requests:
        return None
    return sample.server_cpu_seconds / sample.requests


def summarise(samples: dict[str, list[Sample]]) -> list[Result]:
    """One result per variant; ratios are taken round by round, then their median."""
    ceiling = samples.get("ceiling")
    results = []
    for variant, runs in samples.items():
        lookups = sum(s.hits + s.misses for s in runs)
        cpu = [_cpu_per_request(s) for s in runs]
        ratio = cpu_ratio = None
        if ceiling:  # every variant ran once per round, so rounds pair up
            rounds = list(zip(runs, ceiling, strict=True))
            ratio = _median([s.requests_per_second / c.requests_per_second for s, c in rounds])
            cpu_ratios = []
            for s, c in rounds:
                mine, theirs = _cpu_per_request(s), _cpu_per_request(c)
                if mine and theirs:
                    cpu_ratios.append(theirs / mine)
            cpu_ratio = _median(cpu_ratios) if len(cpu_ratios) == len(rounds) else None
        results.append(
            Result(
                variant=variant,
                rounds=len(runs),
                requests=sum(s.requests for s in runs),
                requests_per_second=round(_median([s.requests_per_second for s in runs]), 1),
                p50_ms=round(_median([s.p50_ms for s in runs]), 3),
                p90_ms=round(_median([s.p90_ms for s in runs]), 3),
                p99_ms=round(_median([s.p99_ms for s in runs]), 3),
                max_ms=round(max(s.max_ms for s in runs), 3),
                p99_over_p50=round(_median([s.p99_ms / s.p50_ms for s in runs if s.p50_ms]), 2),
                errors=sum(s.errors for s in runs),
                cache_hit_rate=(
                    round(sum(s.hits for s in runs) / lookups, 4)
                    if variant != "ceiling" and lookups
                    else None
                ),
                server_cpu_us=(
                    round(_median([c for c in cpu if c is not None]) * 1e6, 1)
                    if all(c is not None for c in cpu)
                    else None
                ),
                ratio_to_ceiling=None if ratio is None else round(ratio, 3),
                cpu_ratio_to_ceiling=None if cpu_ratio is None else round(cpu_ratio, 3),
            )
        )
    return results


def target_lines(results: Sequence[Result]) -> list[str]:
    """One line per target of the issue, saying whether this run met it."""
    lines = []
    for result in results:
        target = TARGETS.get(result.variant)
        if target is not None and result.ratio_to_ceiling is not None:
            met = "met" if result.ratio_to_ceiling >= target else "NOT met"
            lines.append(
                f"{result.variant} >= {target:g} x ceiling: {met} ({result.ratio_to_ceiling:.2f})"
            )
        met = "met" if result.p99_over_p50 <= MAX_TAIL_RATIO else "NOT met"
        lines.append(
            f"{result.variant} p99 <= {MAX_TAIL_RATIO:g} x p50: {met} ({result.p99_over_p50:.1f})"
        )
    return lines


def format_table(results: Sequence[Result]) -> str:
    """The results as an aligned text table."""
    header = ["variant", "req/s", "p50 ms", "p99 ms", "p99/p50", "x ceiling", "CPU us/req",
              "x ceiling (CPU)", "cache hits", "errors"]  # fmt: skip
    rows = [
        [
            r.variant,
            f"{r.requests_per_second:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.p99_over_p50:.1f}",
            "-" if r.ratio_to_ceiling is None else f"{r.ratio_to_ceiling:.2f}",
            "-" if r.server_cpu_us is None else f"{r.server_cpu_us:.0f}",
            "-" if r.cpu_ratio_to_ceiling is None else f"{r.cpu_ratio_to_ceiling:.2f}",
            "-" if r.cache_hit_rate is None else f"{r.cache_hit_rate:.0%}",
            str(r.errors),
        ]
        for r in results
    ]
    return format_rows(header, rows)


def run_benchmark(
    *,
    data_dir: Path,
    variants: Sequence[str],
    load: Load,
    rounds: int,
    workers: int,
    cached_slugs: int,
    redis_url: str | None,
    access_log: bool,
    say: Callable[[str], None] = print,
) -> tuple[list[Result], int]:
    """Measure `variants` over the index in `data_dir`, `rounds` times in turn; and its size.

    The ceiling and the cached variant share one server. The uncached variant has its own,
    identical but for a one-entry in-process cache and no Redis, so that every request of
    the cycle over all slugs misses and runs the ranking.
    """
    slugs = index_slugs(data_dir)
    hot = [RELATED.format(slug) for slug in slugs[:cached_slugs]]
    every = [RELATED.format(slug) for slug in slugs]
    served: dict[str, Any] = {"data_dir": data_dir, "workers": workers, "log_dir": load.script_dir,
                              "access_log": access_log}  # fmt: skip
    samples: dict[str, list[Sample]] = {variant: [] for variant in VARIANTS if variant in variants}
    with contextlib.ExitStack() as stack:
        main = uncached = None
        if {"ceiling", "cached"} & set(variants):
            main = stack.enter_context(run_server(name="main", redis_url=redis_url, **served))
            check_ceiling(main, hot)
            body = http_get(main.port, hot[0])[1]
            say(f"response body: {len(body)} bytes; cached slugs: {len(hot)}")
        if "uncached" in variants:
            uncached = stack.enter_context(
                run_server(
                    name="uncached", redis_url=None,
                    extra_env={"RECOMMENDER_MEMORY_CACHE_ENTRIES": "1"}, **served,
                )
            )  # fmt: skip
        plan: list[tuple[str, Server | None, list[str]]] = [
            ("ceiling", main, [CEILING_PATH]), ("cached", main, hot), ("uncached", uncached, every),
        ]  # fmt: skip
        for round_number in range(1, rounds + 1):
            for variant, server, paths in plan:
                if variant in samples and server is not None:
                    say(f"round {round_number}/{rounds}: {variant} ...")
                    sample = load.measure(server, paths)
                    if sample.errors:
                        raise BenchError(
                            f"{variant}: {sample.errors} of {sample.requests} requests failed "
                            f"(errors or non-2xx answers); server log:\n{server.log_tail()}"
                        )
                    samples[variant].append(sample)
    return summarise(samples), len(slugs)


def check_ceiling(server: Server, hot: Sequence[str]) -> None:
    """Warm the cached slugs and check the ceiling returns the same bytes as the first."""
    status, related = http_get(server.port, hot[0])
    if status != 200:
        raise BenchError(f"GET {hot[0]} answered {status}: {related[:200]!r}")
    for path in hot:
        http_get(server.port, path)
    status, bare = http_get(server.port, CEILING_PATH)
    if (status, bare) != (200, related):
        raise BenchError("the ceiling route does not return the related response's bytes")


EXAMPLES = (
    "Examples:\n\n"
    "  recommender bench api\n\n"
    "  recommender bench api --rounds 3 --duration 5 --json\n\n"
    "  recommender bench api --data-dir .recommender --variant cached --variant ceiling\n\n"
    "  recommender bench api --data-dir /tmp/bench --source feed.jsonl --workers 2"
)


def bench_api(
    source: Annotated[
        list[Path] | None,
        typer.Option(
            "--source",
            "-s",
            help="Feed(s) to index first (default: the demo corpus). Repeatable.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Data directory to serve. With --source it is (re)indexed first "
            "(incrementally); without, its published index is reused as is. "
            "Default: a temporary directory with the demo corpus.",
            show_default=False,
        ),
    ] = None,
    duration: Annotated[int, typer.Option(min=2, help="Seconds measured per variant.")] = 10,
    warmup: Annotated[
        int, typer.Option(min=0, help="Unmeasured seconds before each measurement.")
    ] = 2,
    rounds: Annotated[
        int,
        typer.Option(min=1, help="Measure every variant this many times, in turn; print medians."),
    ] = 1,
    connections: Annotated[int, typer.Option(min=1, help="Open connections (wrk -c).")] = 64,
    threads: Annotated[int, typer.Option(min=1, help="wrk threads (wrk -t).")] = 1,
    workers: Annotated[int, typer.Option(min=1, help="Uvicorn worker processes.")] = 1,
    cached_slugs: Annotated[
        int, typer.Option(min=1, help="How many slugs the cached variant cycles over.")
    ] = 16,
    variant: Annotated[
        list[str] | None,
        typer.Option(help="Variants to run: ceiling, cached, uncached (default all)."),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(help="Redis for the ceiling/cached server's shared tier (default: none)."),
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Keep uvicorn's access log on, as `recommender serve` does.")
    ] = False,
    wrk: Annotated[str, typer.Option(help="The wrk executable.")] = "wrk",
    as_json: JsonOption = False,
) -> None:
    """Requests/s and p50/p99 of the related endpoint: ceiling, cached and uncached."""
    chosen = list(variant or VARIANTS)
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        raise fail(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if connections < threads:
        raise fail("--connections must be at least --threads (wrk opens connections per thread)")
    wrk_path = require_wrk(wrk)

    with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch:
        work_dir = Path(scratch)
        target = data_dir or work_dir / "data"
        sources = list(source or ([] if data_dir else DEMO_SOURCES))
        missing = [str(path) for path in sources if not path.exists()]
        if missing:
            raise fail(f"no such feed: {', '.join(missing)} (pass --source FEED or --data-dir)")
        load = Load(wrk_path, duration, warmup, threads, connections, work_dir)
        try:
            if sources:
                say(f"indexing {', '.join(map(str, sources))} into {target} (real model) ...")
                started = time.monotonic()
                index_corpus(sources, target)
                say(f"indexed in {time.monotonic() - started:.0f} s")
            results, articles = run_benchmark(
                data_dir=target, variants=chosen, load=load, rounds=rounds, workers=workers,
                cached_slugs=cached_slugs, redis_url=redis_url, access_log=access_log, say=say,
            )  # fmt: skip
        except BenchError as exc:
            raise fail(str(exc)) from None
    setup = {
        "articles": articles, "workers": workers, "connections": connections,
        "wrk_threads": threads, "seconds": duration, "warmup_seconds": warmup, "rounds": rounds,
        "cached_slugs": cached_slugs, "redis": redis_url is not None, "access_log": access_log,
        "cpus": os.cpu_count(),
    }  # fmt: skip
    if as_json:
        report = {
            "setup": setup,
            "results": [asdict(r) for r in results],
            "targets": target_lines(results),
        }
        typer.echo(orjson.dumps(report).decode())
        return
    typer.echo(
        f"{articles} articles; {workers} uvicorn worker(s); wrk -t{threads} -c{connections}; "
        f"{duration:g} s per variant x {rounds} round(s); {os.cpu_count()} CPUs"
    )
    typer.echo(format_table(results))
    for line in target_lines(results):
        typer.echo(line)
