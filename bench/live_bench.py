"""`recommender bench live`: what live changes cost the readers of a worker that applies them.

The demo corpus is indexed with the deterministic fake model (the cost measured is the
overlay's, not the model's), `--live` articles are added to the live store, and one
`recommender serve` is driven by wrk over the related lists of indexed and live articles:

    quiet     no live change
    changing  one `PUT /v1/articles/{slug}` correction per `--interval` seconds meanwhile

Each round measures both in turn; the medians of reader p99 are compared.
Target (issue 20): p99 while changing <= 2 x p99 when quiet, with 1,000 live articles.
"""

from __future__ import annotations

import http.client
import itertools
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from api.cli.cli_toolkit import JsonOption, fail
from bench.report import BenchError, format_rows, say
from bench.server_process import DEMO_SOURCES, run_server
from bench.wrk_load import Load, require_wrk

TARGET_RATIO = 2.0
TOKEN = "bench-live-token"
FAKE_ENV = {"RECOMMENDER_MODEL": "fake-hashing", "RECOMMENDER_ADMIN_TOKEN": TOKEN}
EXAMPLES = (
    "Examples:\n\n"
    "  recommender bench live\n\n"
    "  recommender bench live --live 2000 --duration 5 --rounds 3 --json"
)


@dataclass(frozen=True)
class LiveResult:
    live_articles: int
    quiet_p99_ms: float
    changing_p99_ms: float
    quiet_rps: float
    changing_rps: float
    changes: int
    slowest_change_ms: float

    @property
    def ratio(self) -> float:
        return self.changing_p99_ms / self.quiet_p99_ms if self.quiet_p99_ms else float("inf")


def live_records(count: int) -> list[dict[str, Any]]:
    """`count` new articles, each the text of a different pair of demo articles (so that they
    are not near-duplicates of one another, which ranking would walk past)."""
    demo = [orjson.loads(line) for line in DEMO_SOURCES[0].read_bytes().splitlines() if line]
    records = []
    for i in range(count):
        first, second = demo[i % len(demo)], demo[(i + 1 + i // len(demo)) % len(demo)]
        records.append(
            {
                **first,
                "slug": f"live-{i}",
                "title": f"{first['title']} / {second['title']}",
                "summary": f"{first.get('summary', '')} {second.get('summary', '')}",
                "body": f"{first.get('body', '')}\n\n{second.get('body', '')}",
            }
        )
    return records


def index_with_live(data_dir: Path, records: list[dict[str, Any]]) -> None:
    """The demo corpus indexed with the fake model, and `records` put in the live store."""
    from index.state.live_store import LiveStore
    from index.versions.reindex_pipeline import reindex
    from recommender.articles import embedding_text, validate_record
    from recommender.encoding.hashing_encoder import HashingEncoder
    from recommender.settings import Settings

    encoder = HashingEncoder()
    reindex(Settings(data_dir=data_dir, model="fake-hashing").index, list(DEMO_SOURCES), encoder)
    articles = [validate_record(record).article for record in records]
    vectors = encoder.encode([embedding_text(article) for article in articles])
    live = LiveStore.in_directory(data_dir)
    try:
        for record, article, vector in zip(records, articles, vectors, strict=True):
            live.upsert(article.slug, record, encoder.model_id, vector)
    finally:
        live.close()


def put_corrections(
    port: int, records: list[dict[str, Any]], interval: float, stop: threading.Event
) -> list[float]:
    """PUT one correction every `interval` seconds until `stop`; each one's latency (ms)."""
    latencies: list[float] = []
    for n, record in enumerate(itertools.cycle(records)):
        if stop.wait(interval):
            return latencies
        body = orjson.dumps({**record, "title": f"{record['title']} (correction {n})"})
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        started = time.perf_counter()
        connection.request(
            "PUT",
            f"/v1/articles/{record['slug']}",
            body,
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        status = connection.getresponse().status
        latencies.append((time.perf_counter() - started) * 1000)
        connection.close()
        if status != 200:
            raise BenchError(f"a live correction was answered {status}")
    return latencies


def measure(
    data_dir: Path, records: list[dict[str, Any]], load: Load, rounds: int, interval: float,
    say: Callable[[str], None],
) -> LiveResult:  # fmt: skip
    paths = [f"/v1/articles/{r['slug']}/related" for r in records[:200]]
    quiet: list[dict[str, int]] = []
    changing: list[dict[str, int]] = []
    change_latencies: list[float] = []
    with run_server(
        data_dir, 1, load.script_dir, name="live", redis_url=None, access_log=False,
        extra_env=FAKE_ENV, cli_serve=True,
    ) as server:  # fmt: skip
        load.run(server.port, paths, max(load.warmup, 1))
        for round_ in range(rounds):
            say(f"round {round_ + 1}/{rounds}: quiet, then changing")
            quiet.append(load.run(server.port, paths, load.seconds))
            stop = threading.Event()
            with ThreadPoolExecutor(1) as writer:
                corrections = writer.submit(put_corrections, server.port, records, interval, stop)
                try:
                    changing.append(load.run(server.port, paths, load.seconds))
                finally:
                    stop.set()
                change_latencies += corrections.result()
    if not change_latencies:
        raise BenchError("no live change was made while measuring (is --interval too long?)")

    def p99(samples: list[dict[str, int]]) -> float:
        return round(statistics.median(s["p99"] for s in samples) / 1000, 2)

    def rps(samples: list[dict[str, int]]) -> float:
        return round(statistics.median(s["requests"] / s["duration_us"] * 1e6 for s in samples), 1)

    return LiveResult(
        live_articles=len(records),
        quiet_p99_ms=p99(quiet),
        changing_p99_ms=p99(changing),
        quiet_rps=rps(quiet),
        changing_rps=rps(changing),
        changes=len(change_latencies),
        slowest_change_ms=round(max(change_latencies), 1),
    )


def bench_live(
    live: Annotated[int, typer.Option(min=1, help="Live articles in the store.")] = 1000,
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between live corrections while changing.")
    ] = 1.0,
    duration: Annotated[int, typer.Option(min=2, help="Seconds measured per variant.")] = 10,
    warmup: Annotated[int, typer.Option(min=0, help="Unmeasured seconds first.")] = 2,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of quiet + changing.")] = 1,
    connections: Annotated[int, typer.Option(min=1, help="Open connections (wrk -c).")] = 16,
    wrk: Annotated[str, typer.Option(help="The wrk executable.")] = "wrk",
    as_json: JsonOption = False,
) -> None:
    """Reader p99 of one worker with and without a live correction every second."""
    wrk_path = require_wrk(wrk)

    with tempfile.TemporaryDirectory(prefix="bench-live-") as scratch:
        work_dir = Path(scratch)
        records = live_records(live)
        load = Load(wrk_path, duration, warmup, 1, connections, work_dir)
        try:
            say(f"indexing the demo corpus and {live} live articles (fake model) ...")
            index_with_live(work_dir / "data", records)
            result = measure(work_dir / "data", records, load, rounds, interval, say)
        except BenchError as exc:
            raise fail(str(exc)) from None
    verdict = "met" if result.ratio <= TARGET_RATIO else "MISSED"
    target = f"target: p99 changing <= {TARGET_RATIO:g} x p99 quiet: {result.ratio:.2f} ({verdict})"
    if as_json:
        report = {**asdict(result), "ratio": round(result.ratio, 2), "target": target}
        typer.echo(orjson.dumps({**report, "cpus": os.cpu_count()}).decode())
        return
    typer.echo(
        format_rows(
            ["variant", "p99 ms", "req/s"],
            [
                ["quiet", f"{result.quiet_p99_ms:.2f}", f"{result.quiet_rps:.0f}"],
                ["changing", f"{result.changing_p99_ms:.2f}", f"{result.changing_rps:.0f}"],
            ],
        )
    )
    typer.echo(
        f"{result.live_articles} live articles; {result.changes} corrections "
        f"(slowest answered in {result.slowest_change_ms:.0f} ms)"
    )
    typer.echo(target)
