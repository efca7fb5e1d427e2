"""`recommender bench catalog`: a large synthetic catalog (vectors only) built, loaded, searched.

N unit vectors of dimension 384 drawn from a Gaussian mixture around a few thousand centres
(clustered like real embeddings, so that nearest neighbours and recall mean something) go
through the index code a reindex and the API use:

    build    `VectorIndex.build` with the spec a reindex chooses (above
             RECOMMENDER_EXACT_SEARCH_MAX, HNSW or IVF as RECOMMENDER_ANN_INDEX or `--index`
             says), then `tune_recall`, which raises efSearch (HNSW) or nprobe (IVF) until
             recall@10 on indexed rows reaches 0.98, then `save`
    neighbours  (with `--neighbours N`) the vector-search part of precomputing neighbour lists,
             as a reindex runs it (batched, the candidate pool of RECOMMENDER_NEIGHBOURS, all
             FAISS threads) over N sampled rows, extrapolated to all rows. The lexical re-scoring
             that follows it in a reindex needs article texts, which synthetic vectors lack.
    load     `VectorIndex.load`, as the API loads a version (memory-mapped)
    search   one query at a time on one FAISS thread (as the API searches), over held-out
             queries from the same mixture: p50/p99, and recall@10 against exact search

Build and serving each run in a fresh child process, so that the peak memory of the build and
the resident memory of the served index are their own.

Long (~510 lines): one benchmark, from synthetic vectors to its table, read top to bottom.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import numpy as np
import orjson
import typer
from numpy.typing import NDArray

from api.cli.cli_toolkit import JsonOption, fail
from bench.report import BenchError, format_rows, say
from recommender.encoding.encoder_protocol import normalise_rows
from recommender.settings import AnnIndex, Settings

if TYPE_CHECKING:
    from index.versions.vector_index import Ids, IndexSpec, VectorIndex, Vectors

T = TypeVar("T")
DIMENSION = 384
#: Norm of each point's offset from its centre: cosine to the centre 1/sqrt(1 + s^2) ≈ 0.71,
#: between two points of a cluster ≈ 0.5, about what related news articles score.
SPREAD = 1.0
BLOCK = 65_536
INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
EXAMPLES = (
    "Examples:\n\n"
    "  recommender bench catalog\n\n"
    "  recommender bench catalog --size 50000 --queries 500 --json\n\n"
    "  recommender bench catalog --size 100000 --ef-construction 64 "
    "--base-vectors .recommender/versions/VERSION/vectors.npy\n\n"
    "  recommender bench catalog --size 100000 --index ivf --neighbours 20000"
)


def clustered_vectors(
    count: int,
    *,
    centres: int,
    seed: int,
    stream: int = 0,
    dimension: int = DIMENSION,
    base: Path | None = None,
    spread: float = SPREAD,
) -> Vectors:
    """`count` unit vectors around `centres` random centres (the same centres for one `seed`);
    each `stream` draws different points from that mixture (0: the catalog, 1: queries).

    With `base` (a `.npy` of real embeddings, e.g. a version's `vectors.npy`), its rows are the
    centres instead: noise-perturbed copies of real articles, which keep the real embeddings'
    uneven density and shared directions that random centres lack.
    """
    if base is not None:
        centre_vectors = normalise_rows(np.load(base, allow_pickle=False))
        centres, dimension = centre_vectors.shape
    else:
        centre_vectors = normalise_rows(
            np.random.default_rng(seed).standard_normal((centres, dimension), dtype=np.float32)
        )
    rng = np.random.default_rng([seed, stream])
    out = np.empty((count, dimension), dtype=np.float32)
    for start in range(0, count, BLOCK):
        size = min(BLOCK, count - start)
        noise = rng.standard_normal((size, dimension), dtype=np.float32)
        noise *= np.float32(spread / math.sqrt(dimension))
        out[start : start + size] = normalise_rows(
            centre_vectors[rng.integers(0, centres, size)] + noise
        )
    return out


def exact_top_k(vectors: NDArray[np.float32], queries: Vectors, k: int, block: int = BLOCK) -> Ids:
    """The exact top-k rows per query, by flat search over blocks of rows (bounded memory)."""
    from index.versions.vector_index import IndexSpec, VectorIndex

    best_scores = np.empty((len(queries), 0), dtype=np.float32)
    best_ids = np.empty((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), block):
        rows = np.asarray(vectors[start : start + block])
        scores, ids = VectorIndex.build(rows, IndexSpec("flat")).search(queries, k)
        scores = np.hstack([best_scores, scores])
        ids = np.hstack([best_ids, ids + start])
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(scores, order, axis=1)
        best_ids = np.take_along_axis(ids, order, axis=1)
    return best_ids


def recall(truth: Ids, found: Ids) -> float:
    """Share of the true ids that were found, over all queries."""
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2).sum()
    return float(hits) / float(truth.size) if truth.size else 1.0


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # Linux counts KiB


def rss_bytes() -> int:
    """Resident memory of this process now (Linux; elsewhere the peak stands in)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return peak_rss_bytes()
    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class Built:
    """What the build child reports."""

    spec: dict[str, Any]
    generate_seconds: float
    build_seconds: float
    tune_seconds: float
    tuned_recall: float
    peak_bytes: int
    index_bytes: int
    vectors_bytes: int
    neighbour_seconds: float
    """The timed neighbour search (0 without `NeighbourPlan`)."""


@dataclass(frozen=True, slots=True)
class IndexChoice:
    """Which index the build makes: as a reindex would, with the bench's overrides."""

    exact_search_max: int
    ann_index: AnnIndex
    ef_construction: int | None
    """None: the spec's default."""
    ivf_lists: int | None
    """None: chosen from the count."""

    def spec_for(self, count: int) -> IndexSpec:
        from index.versions.vector_index import choose_spec

        spec = choose_spec(count, self.exact_search_max, self.ann_index, self.ef_construction)
        return dataclasses.replace(spec, ivf_lists=self.ivf_lists) if spec.kind == "ivf" else spec


@dataclass(frozen=True, slots=True)
class NeighbourPlan:
    """How the neighbour search is timed: over `rows` sampled rows, keeping `k` per row
    (RECOMMENDER_NEIGHBOURS; the search examines a wider pool, as a reindex does)."""

    rows: int
    k: int


def time_neighbour_search(
    index: VectorIndex, vectors: Vectors, plan: NeighbourPlan, seed: int
) -> float:
    """Seconds `candidate_batches` (FAISS search and self removal) takes over the sampled rows."""
    from index.versions.neighbours import candidate_batches

    rows = min(plan.rows, len(vectors))
    sample = np.sort(np.random.default_rng(seed).choice(len(vectors), rows, replace=False))
    queries = vectors[sample]
    started = time.perf_counter()
    for _ in candidate_batches(index, queries, sample.astype(np.int64), plan.k):
        pass
    return time.perf_counter() - started


def build_catalog(
    work_dir: Path,
    size: int,
    centres: int,
    seed: int,
    choice: IndexChoice,
    base: Path | None = None,
    spread: float = SPREAD,
    neighbours: NeighbourPlan | None = None,
) -> Built:
    """Generate, build, tune and save the catalog's index, then (with `neighbours`) time the
    neighbour search (run in a child process)."""
    from index.versions.vector_index import VectorIndex, tune_recall

    started = time.perf_counter()
    vectors = clustered_vectors(size, centres=centres, seed=seed, base=base, spread=spread)
    generated = time.perf_counter()
    index = VectorIndex.build(vectors, choice.spec_for(size))
    built = time.perf_counter()
    tuned = tune_recall(index, vectors)
    tuned_at = time.perf_counter()
    index.save(work_dir / INDEX_FILE)
    np.save(work_dir / VECTORS_FILE, vectors, allow_pickle=False)
    peak = peak_rss_bytes()  # of the build, before the sampled rows are copied for timing
    return Built(
        spec=index.spec.to_dict(),
        generate_seconds=generated - started,
        build_seconds=built - generated,
        tune_seconds=tuned_at - built,
        tuned_recall=tuned,
        peak_bytes=peak,
        index_bytes=(work_dir / INDEX_FILE).stat().st_size,
        vectors_bytes=(work_dir / VECTORS_FILE).stat().st_size,
        neighbour_seconds=time_neighbour_search(index, vectors, neighbours, seed)
        if neighbours
        else 0.0,
    )


@dataclass(frozen=True, slots=True)
class Served:
    """What the serving child reports."""

    load_seconds: float
    load_bytes: int
    """Resident memory the load added."""
    serve_bytes: int
    """Resident memory added by the load and the measured queries (pages they touched)."""
    p50_ms: float
    p99_ms: float
    recall_at_10: float


def serve_catalog(
    work_dir: Path,
    spec: dict[str, Any],
    queries: int,
    centres: int,
    seed: int,
    base: Path | None = None,
    spread: float = SPREAD,
) -> Served:
    """Load the saved index, time single queries, then check them against exact search."""
    from index.versions.vector_index import IndexSpec, VectorIndex, set_threads

    baseline = rss_bytes()
    started = time.perf_counter()
    index = VectorIndex.load(work_dir / INDEX_FILE, IndexSpec.from_dict(spec))
    load_seconds = time.perf_counter() - started
    loaded = rss_bytes()
    held_out = clustered_vectors(
        queries, centres=centres, seed=seed, stream=1, base=base, spread=spread
    )
    set_threads(1)
    for query in held_out[: min(100, queries)]:  # warm-up, unmeasured
        index.search(query[None], 10)
    found = np.empty((queries, min(10, index.size)), dtype=np.int64)
    latencies = np.empty(queries, dtype=np.float64)
    for row, query in enumerate(held_out):
        started = time.perf_counter()
        _, ids = index.search(query[None], 10)
        latencies[row] = time.perf_counter() - started
        found[row] = ids[0]
    serving = rss_bytes()
    set_threads(os.cpu_count() or 1)
    vectors = np.load(work_dir / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
    truth = exact_top_k(vectors, held_out, found.shape[1])
    return Served(
        load_seconds=load_seconds,
        load_bytes=loaded - baseline,
        serve_bytes=serving - baseline,
        p50_ms=float(np.percentile(latencies, 50)) * 1000,
        p99_ms=float(np.percentile(latencies, 99)) * 1000,
        recall_at_10=recall(truth, found),
    )


def in_child(action: Callable[..., T], *args: Any) -> T:
    """Run `action(*args)` in a fresh process (so its peak memory is its own) and return."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(action, *args).result()


@dataclass(frozen=True, slots=True)
class CatalogResult:
    """The whole benchmark's figures."""

    size: int
    dimension: int
    centres: int
    queries: int
    index: dict[str, Any]
    """The spec built, with the efSearch or nprobe that tuning chose."""
    generate_seconds: float
    build_seconds: float
    """Index construction (graph, or IVF training and adding) and recall tuning, as in a
    reindex."""
    tune_seconds: float
    build_peak_gb: float
    index_gb: float
    vectors_gb: float
    load_seconds: float
    load_gb: float
    serve_gb: float
    tuned_recall: float
    recall_at_10: float
    p50_ms: float
    p99_ms: float
    neighbour_rows: int
    """Rows whose neighbour search was timed (0: not measured)."""
    neighbour_k: int
    neighbour_seconds_per_1000: float
    neighbour_seconds_extrapolated: float
    """For all `size` rows, at the sampled rows' rate."""


def run_benchmark(
    *,
    size: int,
    centres: int,
    queries: int,
    seed: int,
    exact_search_max: int,
    work_dir: Path,
    ann_index: AnnIndex = "hnsw",
    ef_construction: int | None = None,
    ivf_lists: int | None = None,
    neighbours: NeighbourPlan | None = None,
    base: Path | None = None,
    spread: float = SPREAD,
    say: Callable[[str], None] = print,
) -> CatalogResult:
    """Build in one child process, serve in another; see the module's docstring."""
    if size < 2 or queries < 1 or centres < 1:
        raise BenchError("--size must be at least 2, --queries and --centres at least 1")
    if neighbours is not None and neighbours.rows < 1:
        raise BenchError("--neighbours must be at least 1 row when given")
    if base is not None:
        centres = len(np.load(base, mmap_mode="r", allow_pickle=False))
    say(f"building a {size:,}-vector catalog ({centres:,} centres) ...")
    built = in_child(
        build_catalog,
        work_dir,
        size,
        centres,
        seed,
        IndexChoice(exact_search_max, ann_index, ef_construction, ivf_lists),
        base,
        spread,
        neighbours,
    )
    say(f"built in {built.build_seconds + built.tune_seconds:.1f} s; loading and searching ...")
    served = in_child(serve_catalog, work_dir, built.spec, queries, centres, seed, base, spread)
    gb = 1e9
    timed_rows = min(neighbours.rows, size) if neighbours else 0
    per_row = built.neighbour_seconds / timed_rows if timed_rows else 0.0
    return CatalogResult(
        size=size,
        dimension=DIMENSION,
        centres=centres,
        queries=queries,
        index=built.spec,
        generate_seconds=round(built.generate_seconds, 2),
        build_seconds=round(built.build_seconds + built.tune_seconds, 2),
        tune_seconds=round(built.tune_seconds, 2),
        build_peak_gb=round(built.peak_bytes / gb, 3),
        index_gb=round(built.index_bytes / gb, 3),
        vectors_gb=round(built.vectors_bytes / gb, 3),
        load_seconds=round(served.load_seconds, 3),
        load_gb=round(served.load_bytes / gb, 3),
        serve_gb=round(served.serve_bytes / gb, 3),
        tuned_recall=round(built.tuned_recall, 4),
        recall_at_10=round(served.recall_at_10, 4),
        p50_ms=round(served.p50_ms, 3),
        p99_ms=round(served.p99_ms, 3),
        neighbour_rows=timed_rows,
        neighbour_k=neighbours.k if neighbours else 0,
        neighbour_seconds_per_1000=round(per_row * 1000, 4),
        neighbour_seconds_extrapolated=round(per_row * size, 2),
    )


def table_rows(result: CatalogResult) -> list[list[str]]:
    """Rows of (measure, value, target) for the benchmark tables."""
    from index.versions.vector_index import IndexSpec

    rows = [
        ["vectors", f"{result.size:,} x {result.dimension}, {result.centres:,} centres", "-"],
        ["index", IndexSpec.from_dict(result.index).describe(), "-"],
        ["build s (of which recall tuning)",
         f"{result.build_seconds:,.1f} ({result.tune_seconds:,.1f})", "-"],
        ["build peak memory GB", f"{result.build_peak_gb:.2f}", "-"],
        ["index file GB (+ vectors.npy)", f"{result.index_gb:.2f} (+ {result.vectors_gb:.2f})",
         "-"],
        ["load s (resident GB after load / queries)",
         f"{result.load_seconds:.2f} ({result.load_gb:.2f} / {result.serve_gb:.2f})", "-"],
        [f"recall@10 vs exact, {result.queries:,} held-out queries",
         f"{result.recall_at_10:.3f}", f"tuned on rows: {result.tuned_recall:.3f}"],
        ["1 query, 1 thread, p50 / p99 ms", f"{result.p50_ms:.2f} / {result.p99_ms:.2f}", "-"],
    ]  # fmt: skip
    if result.neighbour_rows:
        share = result.neighbour_seconds_extrapolated / result.build_seconds
        rows += [
            [f"neighbour search s / 1,000 rows (vectors only, {result.neighbour_k} kept, "
             f"{result.neighbour_rows:,} sampled)", f"{result.neighbour_seconds_per_1000:.3f}",
             "-"],
            [f"neighbour search s, all rows (extrapolated from {result.neighbour_rows:,})",
             f"{result.neighbour_seconds_extrapolated:,.1f}", f"{share:.2f} x the build"],
        ]  # fmt: skip
    return rows


def bench_catalog(
    size: Annotated[int, typer.Option(min=2, help="Vectors in the catalog.")] = 1_000_000,
    centres: Annotated[int, typer.Option(min=1, help="Clusters of the mixture.")] = 2000,
    queries: Annotated[
        int, typer.Option(min=1, help="Held-out queries timed and checked for recall.")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic catalog.")] = 0,
    index: Annotated[
        AnnIndex | None,
        typer.Option(
            help="Approximate index above the exact-search size: hnsw or ivf "
            "(default: RECOMMENDER_ANN_INDEX or ivf)."
        ),
    ] = None,
    ef_construction: Annotated[
        int | None,
        typer.Option(
            min=8, help="HNSW efConstruction (default: RECOMMENDER_HNSW_EF_CONSTRUCTION or 64)."
        ),
    ] = None,
    ivf_lists: Annotated[
        int | None,
        typer.Option(min=1, help="IVF lists (default: about 4 x the square root of --size)."),
    ] = None,
    neighbours: Annotated[
        int,
        typer.Option(
            metavar="N",
            min=0,
            help="Time the vector search of neighbour precomputation (the reindex's batched "
            "search, RECOMMENDER_NEIGHBOURS kept per row) over N sampled rows and extrapolate "
            "it to all rows; 0 skips it.",
        ),
    ] = 0,
    base_vectors: Annotated[
        Path | None,
        typer.Option(
            help="A .npy of real embeddings (e.g. an index version's vectors.npy): the catalog "
            "is noise-perturbed copies of its rows instead of a random mixture."
        ),
    ] = None,
    spread: Annotated[
        float,
        typer.Option(
            min=0.0, help="Norm of each copy's offset from its centre (1.0: cosine ≈ 0.71 to it)."
        ),
    ] = SPREAD,
    as_json: JsonOption = False,
) -> None:
    """Build, load and search a synthetic catalog: time, memory, size, recall@10, latency."""
    settings = Settings().index
    ann_index = index or settings.ann_index
    if ann_index == "ivf" and ef_construction is not None:
        raise fail("--ef-construction applies to HNSW: add --index hnsw")
    if ann_index == "hnsw" and ivf_lists is not None:
        raise fail("--ivf-lists applies to IVF: add --index ivf")

    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as scratch:
        try:
            result = run_benchmark(
                size=size, centres=centres, queries=queries, seed=seed,
                exact_search_max=settings.exact_search_max, work_dir=Path(scratch),
                ann_index=ann_index,
                ef_construction=ef_construction or settings.hnsw_ef_construction,
                ivf_lists=ivf_lists,
                neighbours=NeighbourPlan(neighbours, settings.neighbours) if neighbours else None,
                base=base_vectors, spread=spread, say=say,
            )  # fmt: skip
        except BenchError as exc:
            raise fail(str(exc)) from None
    setup = {"exact_search_max": settings.exact_search_max, "cpus": os.cpu_count()}
    if as_json:
        typer.echo(orjson.dumps({"setup": setup, "result": asdict(result)}).decode())
        return
    typer.echo(
        f"{result.size:,} synthetic {result.dimension}-d vectors around {result.centres:,} "
        f"centres; {result.queries:,} held-out queries; {os.cpu_count()} CPUs"
    )
    typer.echo(format_rows(["measure", "value", "target"], table_rows(result)))
