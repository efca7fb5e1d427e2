"""`recommender bench reindex`: what the pipeline costs on top of the model, and a nightly run.

Over the same N real articles, after one unmeasured warm-up batch (model load, first calls):

    encode       the project's encoder on exactly the texts a reindex embeds, in one call (same
                 batch size, sequence length, device, threads and processes): the model's rate
    full         `reindex --full` of the same articles, as a feed file, into a fresh data
                 directory: parsing, hashing, embedding, the embedding cache, FAISS, TF-IDF,
                 neighbours, writing and publishing
    incremental  the default reindex of that directory after a share of the articles (1 %)
                 changed text, as a nightly run would find them

Each round runs the three in turn; ratios are taken round by round, then their median.
Targets (issue 8): full >= 0.9 x encode (texts/s); incremental <= 0.05 x full (seconds).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import orjson
import typer

from api.cli.cli_toolkit import JsonOption, fail
from bench.report import BenchError, format_rows, say
from bench.server_process import REPO, process_tree_cpu_seconds
from recommender.settings import Settings

if TYPE_CHECKING:
    from recommender.articles import Article
    from recommender.encoding.encoder_protocol import Encoder, Vectors

#: The shared data set the data README names for reindex speed (full texts, median 5 k chars).
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "allsides-abp-37k" / "articles.jsonl.gz"
FULL_TARGET = 0.9
INCREMENTAL_TARGET = 0.05
T = TypeVar("T")
EXAMPLES = (
    "Examples:\n\n"
    "  recommender bench reindex\n\n"
    "  recommender bench reindex --limit 500 --rounds 3 --json\n\n"
    "  RECOMMENDER_BATCH_SIZE=32 recommender bench reindex --source feed.jsonl"
)


class TimedEncoder:
    """An encoder that adds up the time spent in the one it wraps (so stages can be told apart)."""

    def __init__(self, inner: Encoder) -> None:
        self._inner = inner
        self.seconds = 0.0

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    @property
    def batch_size(self) -> int:
        return self._inner.batch_size

    def encode(self, texts: Sequence[str]) -> Vectors:
        started = time.perf_counter()
        vectors = self._inner.encode(texts)
        self.seconds += time.perf_counter() - started
        return vectors


@dataclass(frozen=True, slots=True)
class Round:
    """One measured round: wall seconds, and CPU seconds where known."""

    encode: float
    encode_cpu: float | None
    full: float
    full_cpu: float | None
    full_encoding: float
    """Of `full`, the time spent inside the encoder."""
    incremental: float
    incremental_encoding: float
    incremental_embedded: int


@dataclass(frozen=True, slots=True)
class ReindexResult:
    """Medians over the rounds."""

    texts: int
    changed: int
    rounds: int
    encode_texts_per_second: float
    full_texts_per_second: float
    full_over_encode: float
    """Full reindex throughput over raw encoding throughput (target >= 0.9)."""
    full_over_encode_cpu: float | None
    """The same in CPU seconds of this process and its children (a busy machine disturbs it
    less than wall time); None where CPU time is unknown."""
    full_seconds: float
    full_other_seconds: float
    """Of a full run, the seconds outside the encoder: the pipeline's own cost."""
    incremental_seconds: float
    incremental_encoding_seconds: float
    incremental_over_full: float
    """Incremental run seconds over full run seconds (target <= 0.05)."""


def summarise(rounds: Sequence[Round], texts: int, changed: int) -> ReindexResult:
    """Medians of the rounds' figures; each ratio is taken within its round."""

    def median(values: Callable[[Round], float], digits: int = 3) -> float:
        return round(float(statistics.median(values(r) for r in rounds)), digits)

    return ReindexResult(
        texts=texts,
        changed=changed,
        rounds=len(rounds),
        encode_texts_per_second=median(lambda r: texts / r.encode, 2),
        full_texts_per_second=median(lambda r: texts / r.full, 2),
        full_over_encode=median(lambda r: r.encode / r.full),
        full_over_encode_cpu=(
            median(lambda r: (r.encode_cpu or 0.0) / (r.full_cpu or 1.0))
            if all(r.encode_cpu and r.full_cpu for r in rounds)
            else None
        ),
        full_seconds=median(lambda r: r.full),
        full_other_seconds=median(lambda r: r.full - r.full_encoding),
        incremental_seconds=median(lambda r: r.incremental),
        incremental_encoding_seconds=median(lambda r: r.incremental_encoding),
        incremental_over_full=median(lambda r: r.incremental / r.full, 4),
    )


def table_rows(result: ReindexResult) -> list[list[str]]:
    """Rows of (measure, value, target) for the benchmark tables."""
    full_met = "met" if result.full_over_encode >= FULL_TARGET else "NOT met"
    nightly_met = "met" if result.incremental_over_full <= INCREMENTAL_TARGET else "NOT met"
    share = result.changed / result.texts if result.texts else 0.0
    return [
        ["raw encode, texts/s", f"{result.encode_texts_per_second:,.1f}", "-"],
        [
            f"full reindex of {result.texts:,} articles, texts/s",
            f"{result.full_texts_per_second:,.1f}",
            "-",
        ],
        ["full reindex / raw encode", f"{result.full_over_encode:.3f}",
         f">= {FULL_TARGET:g}: {full_met}"],
        ["full reindex / raw encode, CPU time", _optional(result.full_over_encode_cpu), "-"],
        ["full reindex s (outside the encoder)",
         f"{result.full_seconds:.1f} ({result.full_other_seconds:.1f})", "-"],
        [f"incremental s ({result.changed:,} changed, {share:.0%})",
         f"{result.incremental_seconds:.2f}", "-"],
        ["incremental / full", f"{result.incremental_over_full:.3f}",
         f"<= {INCREMENTAL_TARGET:g}: {nightly_met}"],
    ]  # fmt: skip


def _optional(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def read_articles(source: Path, limit: int) -> list[Article]:
    """The first `limit` distinct valid articles of a feed (the rest is never read)."""
    from recommender.ingest.feeds import FeedReport, read_feed

    articles: dict[str, Article] = {}
    for article in read_feed(source, FeedReport()):
        articles[article.slug] = article
        if len(articles) == limit:
            break
    return list(articles.values())


def write_feed(path: Path, articles: Sequence[Article]) -> Path:
    """The articles as a JSON Lines feed, one record each."""
    with path.open("wb") as handle:
        for article in articles:
            card = {key: value for key, value in article.card().items() if key != "metadata"}
            handle.write(orjson.dumps({**card, **article.metadata, "body": article.body}) + b"\n")
    return path


def change_some(articles: Sequence[Article], share: float) -> tuple[list[Article], int]:
    """A copy where an evenly spread `share` of the articles (at least one) has a new title."""
    edited = list(articles)
    if share <= 0:
        return edited, 0
    step = max(1, round(1 / share))
    for row in range(0, len(edited), step):
        edited[row] = dataclasses.replace(edited[row], title=f"{edited[row].title} (updated)")
    return edited, len(range(0, len(edited), step))


def timed(action: Callable[[], T]) -> tuple[T, float, float | None]:
    """What `action` returns, its wall seconds, and the CPU seconds of this process tree."""
    cpu_before = process_tree_cpu_seconds(os.getpid())
    started = time.perf_counter()
    value = action()
    wall = time.perf_counter() - started
    cpu_after = process_tree_cpu_seconds(os.getpid())
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return value, wall, cpu


def measure_round(
    settings: Settings, encoder: TimedEncoder, feeds: tuple[Path, Path], texts: Sequence[str]
) -> Round:
    """Raw encoding, then a full reindex into `settings.data_dir`, then the incremental one."""
    from index.versions.reindex_pipeline import reindex

    _, encode, encode_cpu = timed(lambda: encoder.encode(texts))
    encoder.seconds = 0.0
    _, full, full_cpu = timed(lambda: reindex(settings.index, [feeds[0]], encoder, full=True))
    full_encoding, encoder.seconds = encoder.seconds, 0.0
    summary, incremental, _ = timed(lambda: reindex(settings.index, [feeds[1]], encoder))
    return Round(
        encode=encode,
        encode_cpu=encode_cpu,
        full=full,
        full_cpu=full_cpu,
        full_encoding=full_encoding,
        incremental=incremental,
        incremental_encoding=encoder.seconds,
        incremental_embedded=summary.embedded,
    )


def run_benchmark(
    settings: Settings,
    source: Path,
    *,
    limit: int,
    rounds: int,
    share: float,
    work_dir: Path,
    say: Callable[[str], None] = print,
) -> ReindexResult:
    """Measure `rounds` rounds over the first `limit` articles of `source` (see the module)."""
    from recommender.articles import embedding_text
    from recommender.encoding.encoder_factory import load_encoder

    articles = read_articles(source, limit)
    if not articles:
        raise BenchError(f"{source} holds no valid article")
    edited, changed = change_some(articles, share)
    feeds = (
        write_feed(work_dir / "feed.jsonl", articles),
        write_feed(work_dir / "feed-changed.jsonl", edited),
    )
    texts = list(dict.fromkeys(embedding_text(article) for article in articles))
    encoder = TimedEncoder(load_encoder(settings.encoder))
    say(f"{len(articles):,} articles ({len(texts):,} distinct texts) from {source}; warming up")
    encoder.encode(texts[: settings.encoder.batch_size])
    measured = []
    for number in range(1, rounds + 1):
        say(f"round {number}/{rounds}: encode, full reindex, incremental reindex ...")
        fresh = settings.replaced(**{"data_dir": work_dir / f"data-{number}"})
        result = measure_round(fresh, encoder, feeds, texts)
        if result.incremental_embedded != changed:
            raise BenchError(
                f"the incremental run embedded {result.incremental_embedded} texts, "
                f"not the {changed} that changed"
            )
        measured.append(result)
    return summarise(measured, len(texts), changed)


def bench_reindex(
    source: Annotated[
        Path,
        typer.Option("--source", "-s", help="Feed of real articles (any format reindex reads)."),
    ] = DEFAULT_SOURCE,
    limit: Annotated[int, typer.Option(min=1, help="Articles taken from the feed's start.")] = 2000,
    rounds: Annotated[
        int, typer.Option(min=1, help="Measure this many times, in turn; print medians.")
    ] = 1,
    changed: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of articles changed for the nightly run.")
    ] = 0.01,
    as_json: JsonOption = False,
) -> None:
    """Full reindex throughput against raw encoding, and an incremental run against a full one."""
    from recommender.errors import RecommenderError

    if not source.exists():
        raise fail(f"no such feed: {source} (pass --source FEED)")
    settings = Settings()

    with tempfile.TemporaryDirectory(prefix="bench-reindex-") as scratch:
        try:
            result = run_benchmark(
                settings, source, limit=limit, rounds=rounds, share=changed,
                work_dir=Path(scratch), say=say,
            )  # fmt: skip
        except (BenchError, RecommenderError) as exc:
            raise fail(str(exc)) from None
    encoder = settings.encoder
    setup = {
        "source": str(source), "model": encoder.model, "device": encoder.device,
        "batch_size": encoder.batch_size, "max_seq_length": encoder.max_seq_length,
        "threads": encoder.threads, "processes": encoder.processes,
        "cpus": os.cpu_count(),
    }  # fmt: skip
    if as_json:
        typer.echo(orjson.dumps({"setup": setup, "result": asdict(result)}).decode())
        return
    typer.echo(
        f"{result.texts:,} texts from {source.name}; {encoder.model} on {encoder.device}, "
        f"batch {encoder.batch_size}, {result.rounds} round(s); {os.cpu_count()} CPUs"
    )
    typer.echo(format_rows(["measure", "value", "target"], table_rows(result)))
