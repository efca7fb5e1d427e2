"""`recommender bench backends`: each encoder backend against raw torch, on speed and quality.

Each backend runs in its own fresh process (spawned), on the same texts with the same batch size,
after an unmeasured warm-up batch (model load; the ONNX export on first use):

    encode       the backend's encoder on the texts a reindex embeds, in one call
    full         `reindex --full` of those articles into a fresh data directory
    cosine       per text, the backend's vector against torch's (mean and minimum)
    nDCG@5       `recommender evaluate` (the served `default` strategy) on each labelled set:
                 BASIL (300 articles, full text) and the first stories of allsides-neus-stories
    ray          the full reindex again with `--engine ray` on a local Ray instance (one actor
                 per core), when the [ray] extra is installed

Targets (issue 18): full reindex with onnx-int8 >= 1.5 x raw torch encode (texts/s); nDCG@5
within 0.005 of torch on every labelled set.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
import typer

from api.cli.cli_toolkit import JsonOption, fail
from bench.reindex_bench import read_articles, write_feed
from bench.report import BenchError, format_rows
from bench.server_process import REPO
from recommender.encoding.encoder_settings import EncoderBackend
from recommender.settings import Settings

DATA = REPO.parent / "shared" / "data"
BASIL = DATA / "basil-triplets" / "articles.jsonl"
NEUS = DATA / "allsides-neus-stories" / "articles.jsonl"
RELEVANCE = "story_id"
SPEED_TARGET = 1.5
NDCG_TOLERANCE = 0.005
BACKENDS: tuple[EncoderBackend, ...] = ("torch", "onnx", "onnx-int8")
EXAMPLES = (
    "Examples:\n\n"
    "  recommender bench backends\n\n"
    "  recommender bench backends --texts 200 --neus 150 --backend torch --backend onnx-int8"
)


@dataclass(frozen=True, slots=True)
class BackendRun:
    """One backend's figures (vectors are compared in the parent, then dropped)."""

    backend: str
    encode_texts_per_second: float
    full_texts_per_second: float
    ndcg_at_5: dict[str, float]
    ray_full_texts_per_second: float | None


@dataclass(frozen=True, slots=True)
class BackendRow:
    backend: str
    encode_texts_per_second: float
    full_texts_per_second: float
    full_over_torch_encode: float
    """Full reindex throughput over raw torch encoding (target >= 1.5 for onnx-int8)."""
    cosine_mean: float
    cosine_min: float
    ndcg_at_5: dict[str, float]
    ndcg_delta: dict[str, float]
    """nDCG@5 minus torch's, per labelled set (target: within 0.005)."""
    ray_full_texts_per_second: float | None = None
    """`reindex --full --engine ray` on a local Ray instance (None: ray not installed)."""


def measure_backend(
    backend: EncoderBackend,
    feed: Path,
    labelled: dict[str, Path],
    work_dir: Path,
    with_ray: bool = True,
) -> tuple[BackendRun, Any]:
    """In a fresh process: the figures of one backend and its vectors of the feed's texts
    (with `with_ray`, also a full reindex on a local Ray instance)."""
    from index.evaluation import evaluate, prepare
    from index.versions.reindex_pipeline import reindex
    from recommender.articles import embedding_text
    from recommender.encoding.encoder_factory import load_encoder
    from recommender.evaluation.relevance import LabelRelevance
    from recommender.ingest.feeds import FeedReport, load_articles

    settings = Settings(data_dir=work_dir / backend, encoder_backend=backend)
    encoder = load_encoder(settings.encoder)
    texts = list(
        dict.fromkeys(embedding_text(a) for a in load_articles([feed], FeedReport()).values())
    )
    encoder.encode(texts[: settings.encoder.batch_size])  # warm-up: load (and export) the model
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    encode = time.perf_counter() - started
    started = time.perf_counter()
    reindex(settings.index, [feed], encoder, full=True)
    full = time.perf_counter() - started
    ndcg = {}
    for name, source in labelled.items():
        data = prepare(settings.index, [source], encoder)
        relevance = LabelRelevance.from_articles(data.articles, RELEVANCE)
        result = evaluate(data, relevance, k=5, strategies=["default"])
        ndcg[name] = round(float(result["results"]["default"]["ndcg_at_k"]), 4)
    run = BackendRun(
        backend,
        round(len(texts) / encode, 2),
        round(len(texts) / full, 2),
        ndcg,
        _ray_full_rate(settings, feed, len(texts)) if with_ray else None,
    )
    return run, vectors


def _ray_full_rate(settings: Settings, feed: Path, texts: int) -> float | None:
    """Texts/s of a full reindex on a local Ray instance (actors warmed up first)."""
    import importlib.util

    from index.versions.ray_encoding import RayEncoder
    from index.versions.reindex_pipeline import reindex

    if importlib.util.find_spec("ray") is None:
        return None
    on_ray = settings.replaced(
        data_dir=settings.data_dir.with_name(f"{settings.data_dir.name}-ray"), encode_engine="ray"
    )
    encoder = RayEncoder(on_ray.encoder, address=on_ray.index.ray_address)
    try:
        encoder.encode(["warm-up"] * settings.encoder.batch_size * len(encoder.actor_names))
        started = time.perf_counter()
        reindex(on_ray.index, [feed], encoder, full=True)
        return round(texts / (time.perf_counter() - started), 2)
    finally:
        encoder.close()


def compare(runs: dict[str, tuple[BackendRun, Any]]) -> list[BackendRow]:
    """Each backend against torch (which must be among the runs)."""
    torch_run, torch_vectors = runs["torch"]
    rows = []
    for run, vectors in runs.values():
        cosines = (np.asarray(vectors) * np.asarray(torch_vectors)).sum(axis=1)
        rows.append(
            BackendRow(
                backend=run.backend,
                encode_texts_per_second=run.encode_texts_per_second,
                full_texts_per_second=run.full_texts_per_second,
                full_over_torch_encode=round(
                    run.full_texts_per_second / torch_run.encode_texts_per_second, 3
                ),
                cosine_mean=round(float(cosines.mean()), 4),
                cosine_min=round(float(cosines.min()), 4),
                ndcg_at_5=run.ndcg_at_5,
                ndcg_delta={
                    name: round(value - torch_run.ndcg_at_5[name], 4)
                    for name, value in run.ndcg_at_5.items()
                },
                ray_full_texts_per_second=run.ray_full_texts_per_second,
            )
        )
    return rows


def table_rows(rows: list[BackendRow]) -> list[list[str]]:
    """Rows of (measure, value, target) for the benchmark tables."""
    out = []
    for row in rows:
        speed_target = "-"
        if row.backend == "onnx-int8":
            met = row.full_over_torch_encode >= SPEED_TARGET
            speed_target = f">= {SPEED_TARGET:g}: {'met' if met else 'NOT met'}"
        out.append(
            [f"{row.backend}: encode / full reindex, texts/s",
             f"{row.encode_texts_per_second:,.1f} / {row.full_texts_per_second:,.1f}", "-"]
        )  # fmt: skip
        if row.ray_full_texts_per_second is not None:
            out.append(
                [f"{row.backend}: full reindex on Ray (local instance), texts/s",
                 f"{row.ray_full_texts_per_second:,.1f}", "-"]
            )  # fmt: skip
        out.append(
            [f"{row.backend}: full reindex / raw torch encode",
             f"{row.full_over_torch_encode:.3f}", speed_target]
        )  # fmt: skip
        if row.backend == "torch":
            continue
        out.append(
            [f"{row.backend}: cosine to torch, mean (min)",
             f"{row.cosine_mean:.4f} ({row.cosine_min:.4f})", "-"]
        )  # fmt: skip
        for name, delta in row.ndcg_delta.items():
            met = abs(delta) <= NDCG_TOLERANCE
            out.append(
                [f"{row.backend}: nDCG@5 {name} (delta to torch)",
                 f"{row.ndcg_at_5[name]:.4f} ({delta:+.4f})",
                 f"|delta| <= {NDCG_TOLERANCE:g}: {'met' if met else 'NOT met'}"]
            )  # fmt: skip
    return out


def first_lines(source: Path, count: int, target: Path) -> Path:
    """The first `count` records of a JSON Lines feed, as they are (labels kept)."""
    with source.open("rb") as lines, target.open("wb") as out:
        for _, line in zip(range(count), lines, strict=False):
            out.write(line)
    return target


def run_benchmark(
    backends: list[EncoderBackend], texts: int, neus: int, work_dir: Path, with_ray: bool = True
) -> list[BackendRow]:
    """Measure each backend in its own spawned process (see the module)."""
    for path in (BASIL, NEUS):
        if not path.is_file():
            raise BenchError(f"no labelled set at {path}")
    feed = write_feed(work_dir / "throughput.jsonl", read_articles(BASIL, texts))
    labelled = {"basil": BASIL, f"neus-{neus}": first_lines(NEUS, neus, work_dir / "neus.jsonl")}
    runs: dict[str, tuple[BackendRun, Any]] = {}
    order: list[EncoderBackend] = ["torch", *[b for b in backends if b != "torch"]]
    for backend in order:
        typer.echo(f"backend {backend} ...", err=True)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            runs[backend] = pool.submit(
                measure_backend, backend, feed, labelled, work_dir, with_ray
            ).result()
    return compare(runs)


def bench_backends(
    backend: Annotated[
        list[str] | None,
        typer.Option(help="Backends compared with torch (repeatable; default: all)."),
    ] = None,
    texts: Annotated[
        int, typer.Option(min=2, help="BASIL articles embedded for the throughput figures.")
    ] = 300,
    neus: Annotated[
        int, typer.Option(min=2, help="Articles from the start of allsides-neus-stories.")
    ] = 300,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray/--no-ray", help="Also time a full reindex on a local Ray instance per backend."
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Throughput, cosine to torch and nDCG@5 of each encoder backend, each in its own process."""
    from recommender.errors import RecommenderError

    chosen = list(backend or BACKENDS)
    unknown = [name for name in chosen if name not in BACKENDS]
    if unknown:
        raise fail(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as scratch:
        try:
            rows = run_benchmark(chosen, texts, neus, Path(scratch), ray)  # type: ignore[arg-type]
        except (BenchError, RecommenderError) as exc:
            raise fail(str(exc)) from None
    setup = {"texts": texts, "neus": neus, "batch_size": Settings().encoder.batch_size,
             "cpus": os.cpu_count()}  # fmt: skip
    if as_json:
        typer.echo(orjson.dumps({"setup": setup, "rows": [asdict(r) for r in rows]}).decode())
        return
    typer.echo(
        f"{texts} BASIL texts, batch {setup['batch_size']}, {os.cpu_count()} CPUs; "
        f"nDCG@5 on BASIL and the first {neus} NeuS articles"
    )
    typer.echo(format_rows(["measure", "value", "target"], table_rows(rows)))
