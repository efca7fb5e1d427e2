"""`make soak`: minutes of steady load on `recommender serve` with Redis, and a swap midway.

One run indexes a real corpus, starts `recommender serve` on loopback with `REDIS_URL` set, warms
it up, and drives it with wrk (the benchmark's driver) for the whole duration, cycling over two
related lists of every article: the plain one (served from process memory when cached) and one
with a filter (through FastAPI). Halfway through, `recommender reindex` runs again with one
article added, so a new version is published and the server swaps to it under load.

The mix is hostile: one request in twenty (`HOSTILE_SHARE`) carries a random valid `exclude`
list (a seeded draw, so every such list is a cache key of its own), and a thread makes one live
change a second (`PUT /v1/articles/{slug}` with the admin token, over a few slugs of its own),
each of which moves the live generation that cached lists are keyed by. Before the load a batch
of widget events is counted; after it the CTR counters must read exactly the same.

It prints the requests, the errors (socket errors, timeouts and answers other than 2xx/3xx),
p50/p99 latency, the server's resident memory (summed over its processes) and Redis's
`used_memory` after the warm-up and at the end, the live changes, the CTR counters and the
version served before and after; and exits 1 unless there was no error, neither memory grew by
more than `--max-memory-growth`, the counters were intact and the server swapped.

Long (~570 lines): one benchmark, from setting up Redis and the load to its verdicts.
"""

from __future__ import annotations

import http.client
import random
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import orjson
import typer

from api.cli.cli_toolkit import JsonOption, fail
from bench.api_bench import RELATED
from bench.report import BenchError, format_rows
from bench.server_process import (
    DEMO_SOURCES,
    REPO,
    Server,
    cache_counters,
    http_get,
    index_corpus,
    index_slugs,
    process_tree,
    run_server,
)
from bench.wrk_load import Load, require_wrk

#: 2,225 BBC articles when the shared data sets are present; else the bundled demo corpus.
BBC_NEWS = REPO.parent / "shared" / "data" / "bbc-news" / "articles.jsonl"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
EXTRA_SLUG = "soak-midway-article"
#: How long the server may take to serve the version the midway reindex published.
SWAP_TIMEOUT_SECONDS = 60.0
#: Share of requests with a random valid `exclude` list.
HOSTILE_SHARE = 0.05
#: Most slugs in one random `exclude` list.
MAX_EXCLUDED = 5
#: Live changes a second, over this many slugs of the soak's own.
LIVE_CHANGES_PER_SECOND = 1.0
LIVE_SLUGS = 10
#: The widget events counted before the load: impressions of this many targets, clicks of one.
CTR_TARGETS = 3
EXAMPLES = (
    "Examples:\n\n"
    "  recommender bench soak\n\n"
    "  recommender bench soak --duration 30 --source demo/articles.jsonl --json\n\n"
    "  recommender bench soak --data-dir /tmp/soak --redis-url redis://127.0.0.1:6379/1"
)


@dataclass(frozen=True, slots=True)
class SoakResult:
    """What one soak measured; `problems` says why it failed (empty: it passed)."""

    articles: int
    seconds: float
    connections: int
    workers: int
    requests: int
    requests_per_second: float
    errors: int
    """Socket errors, timeouts and answers other than 2xx/3xx (must be 0)."""
    p50_ms: float
    p99_ms: float
    max_ms: float
    rss_start_mb: float
    """Resident memory of the server's processes after the warm-up."""
    rss_end_mb: float
    rss_ratio: float
    version_before: str
    version_after: str
    reindex_seconds: float
    swap_seconds: float | None
    """From the start of the midway reindex until the server answered from its version."""
    cache: str
    """The Redis tier's state at the end: ok or degraded."""
    cache_hit_rate: float | None
    """Share of cache lookups that hit under load, over every worker."""
    hostile_share: float
    """Share of requests with a random `exclude` list."""
    live_changes: int
    """Live changes (PUTs) acknowledged during the load."""
    live_change_errors: int
    """Live changes refused or unanswered (must be 0)."""
    redis_start_mb: float
    """Redis `used_memory` after the warm-up."""
    redis_end_mb: float
    redis_ratio: float
    ctr_before: list[int]
    """[impressions, clicks] of every source, counted before the load."""
    ctr_after: list[int]
    problems: list[str]


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and its descendants, from /proc/<pid>/status (Linux)."""
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue  # exited meanwhile
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def judge(
    errors: int,
    rss_ratio: float,
    before: str,
    after: str,
    max_growth: float,
    *,
    redis_ratio: float = 1.0,
    live_errors: int = 0,
    ctr: tuple[Sequence[int], Sequence[int]] = ((), ()),
) -> list[str]:
    """Why a soak failed: errors, memory growth beyond `max_growth` (server or Redis), failed
    live changes, CTR counters that changed, or no swap."""
    problems = []
    if errors:
        problems.append(f"{errors} requests failed")
    if rss_ratio > 1 + max_growth:
        problems.append(f"memory grew by {rss_ratio - 1:.1%} (at most {max_growth:.0%} allowed)")
    if redis_ratio > 1 + max_growth:
        problems.append(
            f"Redis memory grew by {redis_ratio - 1:.1%} (at most {max_growth:.0%} allowed)"
        )
    if live_errors:
        problems.append(f"{live_errors} live changes failed")
    if list(ctr[0]) != list(ctr[1]):
        problems.append(f"the CTR counters changed from {list(ctr[0])} to {list(ctr[1])}")
    if before == after:
        problems.append(f"the server did not swap: it still serves {before}")
    return problems


def soak_paths(slugs: Sequence[str], rng: random.Random | None = None) -> list[str]:
    """Every article's plain related list and a filtered one, interleaved; with `rng`, plus one
    path in twenty, spread evenly, with a random valid `exclude` list (1 to 5 other slugs, each an
    `exclude` parameter)."""
    paths = []
    for n, slug in enumerate(slugs):
        paths.append(RELATED.format(slug))
        paths.append(f"{RELATED.format(slug)}?limit=3&exclude={slugs[n - 1]}")
    if rng is None:
        return paths
    hostile = max(1, round(len(paths) * HOSTILE_SHARE / (1 - HOSTILE_SHARE)))
    mixed: list[str] = []
    for n in range(hostile):  # spread evenly over the cycle
        mixed += paths[n * len(paths) // hostile : (n + 1) * len(paths) // hostile]
        source = rng.choice(slugs)
        others = [
            slug for slug in rng.sample(slugs, min(len(slugs), MAX_EXCLUDED)) if slug != source
        ]
        excluded = others[: rng.randint(1, max(1, len(others)))]
        mixed.append(
            RELATED.format(source) + "?" + "&".join(f"exclude={slug}" for slug in excluded)
        )
    return mixed


def redis_used_memory(url: str) -> int:
    """Redis's `used_memory` (INFO memory), in bytes."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        used: int = client.info("memory")["used_memory"]
        return used
    finally:
        client.close()


def http_send(
    port: int, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def count_events(port: int, slugs: Sequence[str]) -> None:
    """Widget events about the first article, as the widget sends them: impressions of its
    list's first few suggestions and a click on one, with the list's token."""
    source = slugs[0]
    status, answer = http_send(
        port, "GET", f"/v1/articles/{source}/related?limit={CTR_TARGETS}", b"", {}
    )
    if status != 200:
        raise BenchError(f"GET the related list of {source} answered {status}: {answer[:200]!r}")
    listed = orjson.loads(answer)
    shown = {"source": source, "token": listed["feedback"]["token"], "impression": "soak" * 8}
    events = [
        {"type": "impression", "target": item["slug"], "slot": slot, **shown}
        for slot, item in enumerate(listed["items"], start=1)
    ]
    events.append({**events[0], "type": "click"})
    body = orjson.dumps({"events": events})
    status, answer = http_send(port, "POST", "/v1/events", body, {"Content-Type": "text/plain"})
    if status != 202 or orjson.loads(answer)["accepted"] != len(events):
        raise BenchError(f"POST /v1/events answered {status}: {answer[:200]!r}")


def ctr_totals(port: int, token: str) -> list[int]:
    """[impressions, clicks] over every source, as GET /v1/stats/ctr reports them."""
    status, body = http_send(
        port, "GET", "/v1/stats/ctr", b"", {"Authorization": f"Bearer {token}"}
    )
    report = orjson.loads(body) if status == 200 else {}
    if not report.get("available"):
        raise BenchError(f"GET /v1/stats/ctr answered {status}: {body[:200]!r}")
    return [int(report["totals"]["impressions"]), int(report["totals"]["clicks"])]


class LiveChanges:
    """A thread that makes `LIVE_CHANGES_PER_SECOND` live changes, cycling over `LIVE_SLUGS`
    slugs of its own (so that the live overlay's size stays flat), until stopped."""

    def __init__(self, port: int, token: str) -> None:
        self._port = port
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-changes", daemon=True)
        self.acknowledged = 0
        self.failures: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def change(self, n: int) -> None:
        """The n-th live change: a PUT of one of the thread's slugs."""
        slug = f"soak-live-{n % LIVE_SLUGS}"
        record = {
            "title": f"Live change {n}: an update published under load",
            "summary": f"Revision {n} of a story that changes every second of the soak.",
            "section": "live",
        }
        try:
            status, body = http_send(
                self._port, "PUT", f"/v1/articles/{slug}", orjson.dumps(record), self._headers
            )
        except OSError as exc:
            self.failures.append(f"{slug}: {exc}")
            return
        if status == 200:
            self.acknowledged += 1
        else:
            self.failures.append(f"{slug}: {status} {body[:200]!r}")

    def _run(self) -> None:
        started = time.monotonic()
        n = 0
        # On a schedule, not a fixed pause: a slow change does not lower the rate.
        while not self._stop.wait(
            max(0.0, started + n / LIVE_CHANGES_PER_SECOND - time.monotonic())
        ):
            n += 1
            self.change(n)


def write_extra_feed(path: Path) -> Path:
    """A feed of one new article, which makes the midway reindex publish a new version."""
    record = {
        "slug": EXTRA_SLUG,
        "title": f"Soak test article published midway, run {time.strftime('%Y%m%dT%H%M%S')}",
        "summary": "An article added while the service is under load, so that it swaps index.",
        "section": "test",
    }
    path.write_bytes(orjson.dumps(record) + b"\n")
    return path


def served_version(port: int) -> str:
    status, body = http_get(port, "/v1/index")
    if status != 200:
        raise BenchError(f"GET /v1/index answered {status}: {body[:200]!r}")
    version: str = orjson.loads(body)["version"]
    return version


class MidwayReindex:
    """`recommender reindex` with the extra feed after `delay` seconds, in a thread; then the
    time until the server answers from the new version."""

    def __init__(
        self, sources: Sequence[Path], data_dir: Path, server: Server, delay: float
    ) -> None:
        self._sources = list(sources)
        self._data_dir = data_dir
        self._server = server
        self._delay = delay
        self._before = served_version(server.port)
        self.reindex_seconds = 0.0
        self.swap_seconds: float | None = None
        self.failure: BenchError | None = None
        self._thread = threading.Thread(target=self._run, name="midway-reindex", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        if self.failure is not None:
            raise self.failure

    def _run(self) -> None:
        time.sleep(self._delay)
        started = time.monotonic()
        try:
            index_corpus(self._sources, self._data_dir)
            self.reindex_seconds = time.monotonic() - started
            deadline = time.monotonic() + SWAP_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                if served_version(self._server.port) != self._before:
                    self.swap_seconds = time.monotonic() - started
                    return
                time.sleep(0.1)
        except BenchError as exc:
            self.failure = exc


def run_soak(
    *,
    sources: Sequence[Path],
    data_dir: Path,
    load: Load,
    workers: int,
    redis_url: str,
    max_growth: float,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> SoakResult:
    """Index, serve, warm up, then load for `load.seconds` with live changes and a reindex
    halfway."""
    say(f"indexing {', '.join(map(str, sources))} into {data_dir} ...")
    started = time.monotonic()
    index_corpus(sources, data_dir)
    say(f"indexed in {time.monotonic() - started:.0f} s")
    slugs = index_slugs(data_dir)
    paths = soak_paths(slugs, random.Random(seed))
    extra = write_extra_feed(load.script_dir / "midway.jsonl")
    token = secrets.token_urlsafe(24)
    with run_server(
        data_dir, workers, load.script_dir, name="soak", redis_url=redis_url, access_log=False,
        cli_serve=True, extra_env={"RECOMMENDER_ADMIN_TOKEN": token},
    ) as server:  # fmt: skip
        if load.warmup:
            say(f"warming up for {load.warmup} s ...")
            warm = load.run(server.port, paths, load.warmup)
            if warm["errors"]:
                raise BenchError(f"{warm['errors']} requests failed during the warm-up")
        live = LiveChanges(server.port, token)
        live.change(0)  # the first one loads the model: memory is measured from here on
        warm_changes = live.acknowledged
        count_events(server.port, slugs)
        ctr_before = ctr_totals(server.port, token)
        before = served_version(server.port)
        rss_start = rss_bytes(server.process.pid)
        redis_start = redis_used_memory(redis_url)
        hits_before, misses_before = cache_counters(server)
        midway = MidwayReindex([*sources, extra], data_dir, server, load.seconds / 2)
        midway.start()
        live.start()
        say(
            f"{load.seconds} s under load; live changes; a reindex after {load.seconds / 2:g} s ..."
        )
        try:
            raw = load.run(server.port, paths, load.seconds)
        finally:
            live.stop()
        rss_end = rss_bytes(server.process.pid)
        redis_end = redis_used_memory(redis_url)
        hits, misses = cache_counters(server)
        midway.join()
        after = served_version(server.port)
        ctr_after = ctr_totals(server.port, token)
        _, ready = http_get(server.port, "/readyz")
        cache = str(orjson.loads(ready).get("cache"))
        if raw["errors"] or live.failures:
            say(f"live changes failed: {live.failures[:5]}\nserver log:\n{server.log_tail()}")
    ratio = rss_end / rss_start if rss_start else float("inf")
    redis_ratio = redis_end / redis_start if redis_start else float("inf")
    lookups = hits - hits_before + misses - misses_before
    hit_rate = round((hits - hits_before) / lookups, 4) if lookups else None
    seconds = raw["duration_us"] / 1e6
    return SoakResult(
        articles=len(slugs),
        seconds=round(seconds, 1),
        connections=load.connections,
        workers=workers,
        requests=raw["requests"],
        requests_per_second=round(raw["requests"] / seconds, 1) if seconds else 0.0,
        errors=raw["errors"],
        p50_ms=raw["p50"] / 1000,
        p99_ms=raw["p99"] / 1000,
        max_ms=raw["max"] / 1000,
        rss_start_mb=round(rss_start / 2**20, 1),
        rss_end_mb=round(rss_end / 2**20, 1),
        rss_ratio=round(ratio, 3),
        version_before=before,
        version_after=after,
        reindex_seconds=round(midway.reindex_seconds, 1),
        swap_seconds=None if midway.swap_seconds is None else round(midway.swap_seconds, 1),
        cache=cache,
        cache_hit_rate=hit_rate,
        hostile_share=round(sum("?exclude=" in path for path in paths) / len(paths), 3),
        live_changes=live.acknowledged - warm_changes,
        live_change_errors=len(live.failures),
        redis_start_mb=round(redis_start / 2**20, 2),
        redis_end_mb=round(redis_end / 2**20, 2),
        redis_ratio=round(redis_ratio, 3),
        ctr_before=ctr_before,
        ctr_after=ctr_after,
        problems=judge(
            raw["errors"],
            ratio,
            before,
            after,
            max_growth,
            redis_ratio=redis_ratio,
            live_errors=len(live.failures),
            ctr=(ctr_before, ctr_after),
        ),
    )


def format_result(result: SoakResult) -> str:
    """The result as a two-column table, then PASS or FAIL with the reasons."""
    swap = "-" if result.swap_seconds is None else f"{result.swap_seconds:.1f} s after it began"
    hit_rate = "-" if result.cache_hit_rate is None else f"{result.cache_hit_rate:.0%}"
    rows = [
        ["articles", f"{result.articles:,}"],
        ["duration", f"{result.seconds:.0f} s at {result.connections} connections"],
        ["requests", f"{result.requests:,} ({result.requests_per_second:,.0f}/s)"],
        ["errors", str(result.errors)],
        ["p50 / p99 / max", f"{result.p50_ms:.2f} / {result.p99_ms:.2f} / {result.max_ms:.0f} ms"],
        ["server RSS start", f"{result.rss_start_mb:.1f} MB"],
        ["server RSS end", f"{result.rss_end_mb:.1f} MB (x {result.rss_ratio:.3f})"],
        ["version before", result.version_before],
        ["version after", result.version_after],
        ["midway reindex", f"{result.reindex_seconds:.1f} s; swapped {swap}"],
        ["cache", f"Redis {result.cache}; {hit_rate} of lookups hit"],
        ["hostile mix", f"{result.hostile_share:.0%} of requests with a random exclude list"],
        ["live changes", f"{result.live_changes} acknowledged, {result.live_change_errors} failed"],
        ["Redis memory", f"{result.redis_start_mb:.2f} → {result.redis_end_mb:.2f} MB "
                         f"(x {result.redis_ratio:.3f})"],
        ["CTR counters", f"{result.ctr_before} → {result.ctr_after} (impressions, clicks)"],
    ]  # fmt: skip
    verdict = "FAIL: " + "; ".join(result.problems) if result.problems else "PASS"
    return format_rows(["soak", "result"], rows) + "\n" + verdict


def default_sources() -> list[Path]:
    return [BBC_NEWS] if BBC_NEWS.exists() else list(DEMO_SOURCES)


def bench_soak(
    source: Annotated[
        list[Path] | None,
        typer.Option(
            "--source",
            "-s",
            help="Feed(s) to serve. Repeatable. Default: ../shared/data/bbc-news/articles.jsonl "
            "when present, else the demo corpus.",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Data directory to index into and serve; reuse one to keep its embedding cache "
            "(the first build embeds every article). Default: a temporary directory.",
            show_default=False,
        ),
    ] = None,
    duration: Annotated[int, typer.Option(min=4, help="Seconds under load.")] = 300,
    warmup: Annotated[int, typer.Option(min=0, help="Seconds of load before measuring.")] = 10,
    connections: Annotated[int, typer.Option(min=1, help="Open connections (wrk -c).")] = 64,
    threads: Annotated[int, typer.Option(min=1, help="wrk threads (wrk -t).")] = 1,
    workers: Annotated[int, typer.Option(min=1, help="Uvicorn worker processes.")] = 1,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help=f"Redis for the shared cache tier (default: REDIS_URL, else {DEFAULT_REDIS_URL}).",
            show_default=False,
        ),
    ] = None,
    max_memory_growth: Annotated[
        float, typer.Option(min=0, help="Most growth of the server's RSS allowed (0.1 = 10 %).")
    ] = 0.10,
    wrk: Annotated[str, typer.Option(help="The wrk executable.")] = "wrk",
    seed: Annotated[
        int, typer.Option(help="Seed of the random exclude lists of the hostile mix.")
    ] = 0,
    as_json: JsonOption = False,
) -> None:
    """Minutes of hostile load with Redis, live changes and a reindex midway: errors, p50/p99,
    server and Redis memory, CTR counters."""
    from recommender.settings import Settings

    if connections < threads:
        raise fail("--connections must be at least --threads (wrk opens connections per thread)")
    wrk_path = require_wrk(wrk)
    sources = list(source or default_sources())
    missing = [str(path) for path in sources if not path.exists()]
    if missing:
        raise fail(f"no such feed: {', '.join(missing)}")
    url = redis_url or Settings().redis.url or DEFAULT_REDIS_URL
    check_redis(url)

    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        work_dir = Path(scratch)
        load = Load(wrk_path, duration, warmup, threads, connections, work_dir)
        try:
            result = run_soak(
                sources=sources, data_dir=data_dir or work_dir / "data", load=load,
                workers=workers, redis_url=url, max_growth=max_memory_growth, seed=seed,
                say=lambda message: typer.echo(message, err=True),
            )  # fmt: skip
        except BenchError as exc:
            raise fail(str(exc)) from None
    typer.echo(orjson.dumps(asdict(result)).decode() if as_json else format_result(result))
    if result.problems:
        raise typer.Exit(1)


def check_redis(url: str) -> None:
    """Fail with a hint unless Redis answers PING at `url`."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise fail(
            f"no Redis answers at {url} ({exc}): start one (`apt-get install redis-server`), "
            "or pass --redis-url / set REDIS_URL"
        ) from None
    finally:
        client.close()
