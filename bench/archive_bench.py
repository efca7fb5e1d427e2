"""`recommender bench archive`: a publisher's whole archive on one host (issue 30).

With the deterministic hashing encoder, so that every figure is the pipeline's and the
service's own, not the model's:

    catalog   N articles copied from the real full texts of ../shared/data with small changes
              (`bench.archive_catalog`), streamed to a JSON Lines feed
    full      `recommender reindex --full` of it into an empty data directory, in a child
              process: wall seconds, peak memory (the child's VmHWM, polled), and the
              per-stage figures of its summary line where it has them
    nightly   the default, incremental reindex after `--changed` of the articles changed (most
              edited, a few new): the same figures, and its share of the full run; `--nights`
              such runs in a row, each on the previous night's feed (7 nights: the default
              retention of 5 versions is reached)
    disk      the data directory: versions, caches and the rest, each file counted once (`du`)
    serving   `recommender serve --workers W` with a one-entry result cache and no Redis, so
              that every request misses and ranks: cold start (process start to the first 200
              of /readyz), wrk over random slugs (uncached req/s, p50, p99), then each worker's
              private and shared memory (/proc/PID/smaps_rollup) after that traffic; then the
              bare FastAPI route of `make bench-api` (the ceiling) in a server of its own, with
              the same workers and load
    targets   issue 30's, each PASS or FAIL (`verdicts`)

Long (~570 lines): one benchmark, from the catalog to its verdicts, read top to bottom.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from api.cli.cli_toolkit import JsonOption, fail
from bench.api_bench import CEILING_PATH, RELATED
from bench.archive_catalog import (
    FULL_TEXT_SETS,
    missing_sets,
    write_catalog,
    write_nightly,
)
from bench.process_memory import ProcessMemory, memory_rollup, run_to_end, serving_processes
from bench.report import BenchError, format_rows, say
from bench.server_process import REPO, Server, http_get, run_server
from bench.wrk_load import Load, Sample, require_wrk
from recommender.encoding.encoder_protocol import FAKE_MODEL

#: The shared data sets beside the checkout, as the other benchmarks read them.
DEFAULT_DATA = REPO.parent / "shared" / "data"
#: The catalog size issue 30's targets are stated for.
TARGET_ARTICLES = 1_000_000
#: Random slugs the load cycles over (a sample of the catalog's, in random order).
LOAD_SLUGS = 100_000
#: Settings of the benchmark's own processes that would point them at someone's shared state.
PRIVATE_ENV = (
    "REDIS_URL", "RECOMMENDER_REDIS_URL", "RECOMMENDER_DATABASE_URL", "RECOMMENDER_STORE_URL",
    "RECOMMENDER_DATA_DIR",
)  # fmt: skip
MB = 1e6
GB = 1e9
EXAMPLES = (
    "Examples:\n\n"
    "  recommender bench archive --articles 100000\n\n"
    "  recommender bench archive --articles 1000000 --json\n\n"
    "  recommender bench archive --articles 20000 --nights 7\n\n"
    "  recommender bench archive --articles 2000 --duration 5 --work-dir /tmp/archive"
)


@dataclass(frozen=True, slots=True)
class ReindexRun:
    """One `recommender reindex` in a child process."""

    seconds: float
    cpu_seconds: float
    peak_memory_mb: float
    embedded: int
    indexed: int
    stages: list[dict[str, Any]] | None
    """The summary's per-stage figures (`{"stage", "seconds", "peak_memory_mb"}`), where the
    reindex reports them; None where it does not."""
    summary: dict[str, Any]
    """The run's whole one-line summary."""


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """Bytes on disk of a data directory (each file once, hard links included, as `du`)."""

    total: int
    versions: int
    caches: int
    other: int
    """The rest: CURRENT, the lock, the live and curation state."""
    version_count: int
    entries: dict[str, int]
    """Bytes of each top-level entry."""


@dataclass(frozen=True, slots=True)
class Figures:
    """What the targets are checked against (`TARGETS` names these fields)."""

    full_peak_gb: float
    full_minutes: float
    nightly_ratio: float
    """The slowest night's."""
    worker_private_mb: float
    """The largest worker's."""
    cold_start_s: float
    ratio_to_ceiling: float
    data_dir_gb: float


@dataclass(frozen=True, slots=True)
class Target:
    """One target of issue 30, stated for `TARGET_ARTICLES` articles."""

    name: str
    field: str
    limit: float
    at_most: bool
    """True: the figure must be at most `limit`; False: at least."""
    grows: bool
    """The figure grows in proportion to the catalog: below `TARGET_ARTICLES` it is
    extrapolated linearly before the check. The others are checked as measured, which below
    the target size is necessary, not sufficient."""


TARGETS = (
    Target("full reindex peak memory, GB", "full_peak_gb", 8.0, at_most=True, grows=False),
    Target("full reindex wall, min", "full_minutes", 25.0, at_most=True, grows=True),
    Target("nightly run / full run (time)", "nightly_ratio", 0.05, at_most=True, grows=False),
    Target("per-worker private memory, MB", "worker_private_mb", 500.0, at_most=True, grows=False),
    Target("serving cold start, s", "cold_start_s", 10.0, at_most=True, grows=False),
    Target("uncached related / bare FastAPI", "ratio_to_ceiling", 0.5, at_most=False, grows=False),
    Target("data directory, GB", "data_dir_gb", 15.0, at_most=True, grows=True),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    target: str
    limit: str
    measured: float
    compared: float
    """The figure checked: `measured`, or its linear extrapolation to `TARGET_ARTICLES`."""
    basis: str
    verdict: str
    """PASS or FAIL."""


def verdicts(figures: Figures, articles: int) -> list[Verdict]:
    """Each target of `TARGETS` checked against the figures of a run over `articles` articles."""
    scale = TARGET_ARTICLES / articles if articles < TARGET_ARTICLES else 1.0
    checked = []
    for target in TARGETS:
        measured = float(getattr(figures, target.field))
        extrapolated = target.grows and scale != 1.0
        compared = measured * scale if extrapolated else measured
        passed = compared <= target.limit if target.at_most else compared >= target.limit
        checked.append(
            Verdict(
                target=target.name,
                limit=f"{'<=' if target.at_most else '>='} {target.limit:g}",
                measured=round(measured, 4),
                compared=round(compared, 4),
                basis=(
                    f"x {scale:,.1f}: linear to {TARGET_ARTICLES:,}"
                    if extrapolated
                    else f"as measured at {articles:,}"
                ),
                verdict="PASS" if passed else "FAIL",
            )
        )
    return checked


def reindex_env() -> dict[str, str]:
    """This process's environment without `PRIVATE_ENV`, with the hashing model."""
    env = {key: value for key, value in os.environ.items() if key not in PRIVATE_ENV}
    return {**env, "RECOMMENDER_MODEL": FAKE_MODEL}


def reindex(data_dir: Path, feed: Path, logs: Path, name: str, *, full: bool) -> ReindexRun:
    """`recommender reindex` of `feed` into `data_dir` in a child process, measured."""
    command = [sys.executable, "-m", "console", "reindex", "--data-dir", str(data_dir),
               "--source", str(feed), *(["--full"] if full else [])]  # fmt: skip
    stdout, stderr = logs / f"reindex-{name}.out", logs / f"reindex-{name}.err"
    finished = run_to_end(command, env=reindex_env(), stdout=stdout, stderr=stderr)
    if finished.returncode != 0:
        tail = "\n".join(stderr.read_text(errors="replace").splitlines()[-20:])
        raise BenchError(f"the {name} reindex failed (exit {finished.returncode}):\n{tail}")
    lines = stdout.read_text().strip().splitlines()
    if not lines:
        raise BenchError(f"the {name} reindex printed no summary line")
    summary: dict[str, Any] = orjson.loads(lines[-1])
    stages = summary.get("stages")
    return ReindexRun(
        seconds=round(finished.seconds, 2),
        cpu_seconds=round(finished.cpu_seconds, 2),
        peak_memory_mb=round(finished.peak_bytes / MB, 1),
        embedded=int(summary["embedded"]),
        indexed=int(summary["indexed"]),
        stages=list(stages) if isinstance(stages, list) else None,
        summary=summary,
    )


def cache_names(data_dir: Path) -> set[str]:
    """Names of the caches that a reindex keeps at the top of `data_dir`."""
    from recommender.ingest.options import read_options
    from recommender.settings import Settings

    index = Settings(data_dir=data_dir).index
    paths = [index.embedding_cache_path, index.term_count_cache_path, index.encoder.export_dir,
             read_options(index.ingest, data_dir).fetch.cache_dir]  # fmt: skip
    return {path.name for path in paths if path is not None and path.parent == data_dir}


def disk_usage(data_dir: Path, caches: Collection[str]) -> DiskUsage:
    """What `data_dir` takes on disk; a top-level entry named in `caches` (or a SQLite side
    file of one, `-wal`, `-shm`, `-journal`) is a cache, `versions` the versions."""
    seen: set[tuple[int, int]] = set()

    def used(top: Path) -> int:
        paths = [top]
        if top.is_dir() and not top.is_symlink():
            walked = os.walk(top)
            paths += [Path(root, name) for root, dirs, files in walked for name in dirs + files]
        total = 0
        for path in paths:
            stat = os.lstat(path)
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
        return total

    entries = {entry.name: used(entry) for entry in sorted(data_dir.iterdir())}
    versions_dir = data_dir / "versions"
    is_cache = {name for name in entries if name in caches or name.rsplit("-", 1)[0] in caches}
    return DiskUsage(
        total=sum(entries.values()),
        versions=entries.get("versions", 0),
        caches=sum(entries[name] for name in is_cache),
        other=sum(size for name, size in entries.items() if name not in is_cache | {"versions"}),
        version_count=(
            sum(1 for path in versions_dir.iterdir() if path.is_dir())
            if versions_dir.is_dir()
            else 0
        ),
        entries=entries,
    )


@contextmanager
def timed_server(
    data_dir: Path, workers: int, logs: Path, *, name: str, cli_serve: bool
) -> Iterator[tuple[Server, float]]:
    """A server over `data_dir` (every request a cache miss), and seconds until it was ready."""
    started = time.monotonic()
    with run_server(
        data_dir, workers, logs, name=name, redis_url=None, access_log=False, cli_serve=cli_serve,
        extra_env={"RECOMMENDER_MODEL": FAKE_MODEL, "RECOMMENDER_MEMORY_CACHE_ENTRIES": "1"},
        drop_env=PRIVATE_ENV,
    ) as server:  # fmt: skip
        yield server, time.monotonic() - started


def measured_load(load: Load, server: Server, paths: list[str], what: str) -> Sample:
    """A wrk run over `paths` (after its warm-up), refused when any request failed."""
    sample = load.measure(server, paths)
    if sample.errors:
        raise BenchError(
            f"{what}: {sample.errors} of {sample.requests} requests failed; server log:\n"
            f"{server.log_tail()}"
        )
    return sample


def serve(
    data_dir: Path,
    slugs: list[str],
    load: Load,
    workers: int,
    logs: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The serving figures: cold start, uncached load, worker memory, the ceiling."""
    paths = [RELATED.format(slug) for slug in slugs]
    say(f"serving with {workers} workers: cold start, then uncached load over random slugs ...")
    with timed_server(data_dir, workers, logs, name="serve", cli_serve=True) as (server, cold):
        uncached = measured_load(load, server, paths, "uncached related")
        pids = serving_processes(server.process.pid, workers)
        if len(pids) != workers:
            raise BenchError(f"found {len(pids)} worker processes of the server, not {workers}")
        memory = [memory_rollup(pid) for pid in pids]
    say("the bare FastAPI ceiling, same workers and load ...")
    with timed_server(data_dir, workers, logs, name="ceiling", cli_serve=False) as (server, _):
        status, body = http_get(server.port, CEILING_PATH)
        if status != 200:
            raise BenchError(f"the ceiling answered {status}: {body[:200]!r}")
        ceiling = measured_load(load, server, [CEILING_PATH], "ceiling")
    lookups = uncached.hits + uncached.misses
    return {
        "cold_start_s": round(cold, 2),
        "workers": [worker_figures(m) for m in memory],
        "uncached": {
            "req_s": round(uncached.requests_per_second, 1),
            "p50_ms": round(uncached.p50_ms, 3),
            "p99_ms": round(uncached.p99_ms, 3),
            "requests": uncached.requests,
            "cache_hit_rate": round(uncached.hits / lookups, 4) if lookups else None,
        },
        "ceiling_req_s": round(ceiling.requests_per_second, 1),
        "ceiling_p50_ms": round(ceiling.p50_ms, 3),
        "ceiling_p99_ms": round(ceiling.p99_ms, 3),
        "ratio_to_ceiling": round(uncached.requests_per_second / ceiling.requests_per_second, 3),
    }


def worker_figures(memory: ProcessMemory) -> dict[str, Any]:
    return {
        "pid": memory.pid,
        "rss_mb": round(memory.rss / MB, 1),
        "pss_mb": round(memory.pss / MB, 1),
        "private_mb": round(memory.private / MB, 1),
        "shared_mb": round(memory.shared / MB, 1),
    }


def run_benchmark(
    *,
    data: Path,
    articles: int,
    changed: float,
    nights: int,
    seed: int,
    workers: int,
    load: Load,
    work_dir: Path,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every figure of the module's docstring, as the JSON report's object."""
    rng = random.Random(seed)
    logs = work_dir / "logs"
    logs.mkdir()
    data_dir = work_dir / "data"
    sources = [data / name for name in FULL_TEXT_SETS]
    say(f"writing {articles:,} articles copied from {data} ...")
    started = time.monotonic()
    archive = write_catalog(
        sources, work_dir / "archive.jsonl", articles, rng, min(articles, LOAD_SLUGS)
    )
    generated = time.monotonic() - started
    say(f"written in {generated:.0f} s; full reindex (hashing encoder) ...")
    full = reindex(data_dir, archive.path, logs, "full", full=True)
    if full.indexed != archive.articles:
        raise BenchError(f"the full reindex indexed {full.indexed:,} of {archive.articles:,} "
                         f"articles (see {logs / 'reindex-full.err'})")  # fmt: skip
    say(f"full reindex: {full.seconds:.1f} s, peak {full.peak_memory_mb:,.0f} MB")
    runs: list[dict[str, Any]] = []
    catalog = archive
    for night in range(1, nights + 1):
        say(f"night {night} of {nights}: {changed:.1%} of the articles changed, reindex ...")
        change = write_nightly(
            catalog, work_dir / f"archive-night-{night}.jsonl", changed, rng, night
        )
        if night > 1:  # a night's feed is read once: keep the full one and the last
            catalog.path.unlink()
        catalog = dataclasses.replace(
            catalog, path=change.path, articles=catalog.articles + change.added
        )
        run = reindex(data_dir, change.path, logs, f"night-{night}", full=False)
        runs.append({
            **asdict(run), "night": night, "edited": change.edited, "added": change.added,
            "ratio_to_full": round(run.seconds / full.seconds, 4),
            "cpu_ratio_to_full": round(run.cpu_seconds / full.cpu_seconds, 4),
        })  # fmt: skip
    disk = disk_usage(data_dir, cache_names(data_dir))
    serving = serve(data_dir, catalog.slugs, load, workers, logs, say)
    figures = Figures(
        full_peak_gb=full.peak_memory_mb * MB / GB,
        full_minutes=full.seconds / 60,
        nightly_ratio=max(run["ratio_to_full"] for run in runs),
        worker_private_mb=max(worker["private_mb"] for worker in serving["workers"]),
        cold_start_s=serving["cold_start_s"],
        ratio_to_ceiling=serving["ratio_to_ceiling"],
        data_dir_gb=disk.total / GB,
    )
    return {
        "articles": archive.articles,
        "catalog": {
            "base_texts": archive.base_texts,
            "feed_bytes": archive.path.stat().st_size,
            "seconds": round(generated, 1),
        },
        "full_reindex": asdict(full),
        "nightly_reindex": runs[0],
        "nights": runs,
        "data_dir_bytes": disk.total,
        "data_dir": asdict(disk),
        "serving": serving,
        "targets": [asdict(verdict) for verdict in verdicts(figures, archive.articles)],
    }


def stage_rows(full: Mapping[str, Any], nightly: Mapping[str, Any]) -> list[list[str]]:
    """(stage, full s, full peak MB, nightly s, nightly peak MB) of a full and a nightly run,
    or one row saying there are no stage figures."""
    if full["stages"] is None or nightly["stages"] is None:
        return [["stage figures unavailable (the reindex summary has no `stages`)", "", "", "", ""]]
    by_stage = {item["stage"]: item for item in nightly["stages"]}
    rows = []
    for item in full["stages"]:
        night = by_stage.get(item["stage"], {})
        rows.append([
            item["stage"], f"{item['seconds']:,.2f}", f"{item['peak_memory_mb']:,.0f}",
            f"{night['seconds']:,.2f}" if night else "-",
            f"{night['peak_memory_mb']:,.0f}" if night else "-",
        ])  # fmt: skip
    return rows


def night_rows(night: Mapping[str, Any]) -> list[list[str]]:
    """What one nightly run changed and cost, and its share of the full run."""
    return [
        [f"night {night['night']}: {night['edited']:,} edited + {night['added']:,} new; embedded",
         f"{night['embedded']:,}"],
        [f"night {night['night']}: wall s / CPU s / peak MB; share of the full run (CPU)",
         f"{night['seconds']:,.1f} / {night['cpu_seconds']:,.1f} / "
         f"{night['peak_memory_mb']:,.0f}; {night['ratio_to_full']:.3f} "
         f"({night['cpu_ratio_to_full']:.3f})"],
    ]  # fmt: skip


def format_report(report: Mapping[str, Any]) -> str:
    """The report as text: the figures, the stages, the targets."""
    full, nightly, disk = report["full_reindex"], report["nightly_reindex"], report["data_dir"]
    serving, uncached = report["serving"], report["serving"]["uncached"]
    rows = [
        ["full reindex: wall s / CPU s / peak memory MB",
         f"{full['seconds']:,.1f} / {full['cpu_seconds']:,.1f} / {full['peak_memory_mb']:,.0f}"],
        ["full reindex: embedded / indexed", f"{full['embedded']:,} / {full['indexed']:,}"],
        *[row for night in report["nights"] for row in night_rows(night)],
        [f"data directory MB ({disk['version_count']} versions / caches / other)",
         f"{disk['total'] / MB:,.0f} ({disk['versions'] / MB:,.0f} / {disk['caches'] / MB:,.0f}"
         f" / {disk['other'] / MB:,.0f})"],
        ["serving: cold start s", f"{serving['cold_start_s']:.2f}"],
        *[[f"worker {w['pid']}: RSS / PSS / private / shared MB",
           f"{w['rss_mb']:,.0f} / {w['pss_mb']:,.0f} / {w['private_mb']:,.0f} / "
           f"{w['shared_mb']:,.0f}"] for w in serving["workers"]],
        ["uncached related: req/s (p50 / p99 ms)",
         f"{uncached['req_s']:,.0f} ({uncached['p50_ms']:.2f} / {uncached['p99_ms']:.2f})"],
        ["bare FastAPI ceiling: req/s; uncached / ceiling",
         f"{serving['ceiling_req_s']:,.0f}; {serving['ratio_to_ceiling']:.2f}"],
    ]  # fmt: skip
    targets = [[t["target"], t["limit"], f"{t['measured']:,.3f}", f"{t['compared']:,.3f}",
                t["basis"], t["verdict"]] for t in report["targets"]]  # fmt: skip
    return "\n\n".join([
        format_rows(["measure", "value"], rows),
        format_rows(["stage", "full s", "peak MB", "night 1 s", "peak MB"],
                    stage_rows(full, nightly)),
        format_rows(["target (issue 30, at 1,000,000 articles)", "limit", "measured", "checked",
                     "basis", "verdict"], targets),
    ])  # fmt: skip


@contextmanager
def work_directory(kept: Path | None) -> Iterator[Path]:
    """`kept` (made if missing; it must be empty), or a temporary directory removed after."""
    if kept is None:
        with tempfile.TemporaryDirectory(prefix="bench-archive-") as scratch:
            yield Path(scratch)
        return
    kept.mkdir(parents=True, exist_ok=True)
    if any(kept.iterdir()):
        raise BenchError(f"--work-dir {kept} is not empty (give a new or an empty directory)")
    yield kept


def bench_archive(
    articles: Annotated[
        int, typer.Option(min=10, help="Articles in the archive (1000000 for issue 30's targets).")
    ] = 100_000,
    data: Annotated[
        Path,
        typer.Option(help="The shared data folder whose full-text sets are copied."),
    ] = DEFAULT_DATA,
    changed: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of articles changed for the nightly run."),
    ] = 0.01,
    nights: Annotated[
        int,
        typer.Option(
            min=1, help="Nightly runs in a row (7 reach the default retention of 5 versions)."
        ),
    ] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the copies, the changes and the slugs.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Workers of `recommender serve`.")] = 2,
    duration: Annotated[int, typer.Option(min=1, help="Seconds of measured load.")] = 10,
    warmup: Annotated[
        int, typer.Option(min=0, help="Seconds of unmeasured load before each measurement.")
    ] = 5,
    connections: Annotated[int, typer.Option(min=1, help="Open connections (wrk -c).")] = 64,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            help="Keep the feeds, the data directory and the logs here (a new or empty "
            "directory). Default: a temporary directory, removed after.",
            show_default=False,
        ),
    ] = None,
    wrk: Annotated[str, typer.Option(help="The wrk executable.")] = "wrk",
    as_json: JsonOption = False,
) -> None:
    """A publisher's archive of N full-text articles: reindex and nightly time and memory,
    disk, and serving memory, cold start and uncached req/s against issue 30's targets."""
    missing = missing_sets(data)
    if missing:
        raise fail(
            f"no such feed: {', '.join(map(str, missing))} (the shared data sets beside the "
            "checkout; pass --data DIR)"
        )
    wrk_path = require_wrk(wrk)

    load_before = os.getloadavg()
    try:
        with work_directory(work_dir) as work:
            load = Load(wrk_path, duration, warmup, 1, connections, work / "logs")
            report = run_benchmark(
                data=data, articles=articles, changed=changed, nights=nights, seed=seed,
                workers=workers,
                load=load, work_dir=work, say=say,
            )  # fmt: skip
    except BenchError as exc:
        raise fail(str(exc)) from None
    report["setup"] = {
        "data": str(data), "sets": list(FULL_TEXT_SETS), "encoder": FAKE_MODEL, "seed": seed,
        "changed": changed, "nights": nights, "workers": workers, "seconds": duration,
        "warmup_seconds": warmup, "connections": connections, "cpus": os.cpu_count(),
        "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "work_dir": None if work_dir is None else str(work_dir),
    }  # fmt: skip
    if as_json:
        typer.echo(orjson.dumps(report).decode())
        return
    setup = report["setup"]
    typer.echo(
        f"{report['articles']:,} articles copied from {report['catalog']['base_texts']:,} real "
        f"full texts; hashing encoder; {workers} workers; wrk -c{connections}, {duration} s; "
        f"{setup['cpus']} CPUs, load average {setup['load_average'][0]} -> "
        f"{setup['load_average'][1]}"
    )
    typer.echo(format_report(report))
