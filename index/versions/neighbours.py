"""Precomputed candidate lists: each article's best other rows under the hybrid score, so that
serving is a lookup.

Candidates come from a batched FAISS search (a pool wider than what is kept), are re-scored
with the hybrid score of the registered signals (`recommender.signals`), and the best are stored.
Rows go in blocks (`neighbour_block`) to a `BlockExecutor`: this process, or Ray's workers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from index.index_errors import StorageError
from index.versions.block_executor import LOCAL, BlockExecutor, BlockJob
from index.versions.vector_index import VectorIndex
from recommender.ranking import FusionWeights
from recommender.signals.base import Candidates, PoolScores, Side
from recommender.signals.registry import SIGNALS, pair_scores

#: Candidates examined per article, as a multiple of those kept.
POOL_FACTOR = 2
#: Rows whose candidates are searched and scored together.
SEARCH_BATCH = 2048


def drop_self(
    rows: NDArray[np.int64], ids: NDArray[np.int64], scores: NDArray[np.float32], k: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Remove each query's own row from its results and keep the first k of the rest."""
    keep = ids != rows[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    kept_ids = np.take_along_axis(ids, order, axis=1)
    kept_scores = np.take_along_axis(scores, order, axis=1)
    invalid = ~np.take_along_axis(keep, order, axis=1) | (kept_ids < 0)
    kept_ids[invalid] = -1
    kept_scores[invalid] = -np.inf
    return kept_ids, kept_scores


def rank_by_fusion(
    ids: NDArray[np.int64], fused: NDArray[np.float32], keep: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Candidate rows (-1 = none) ordered by their hybrid scores `fused`; best `keep` first."""
    fused[ids < 0] = -np.inf
    order = np.argsort(-fused, axis=-1, kind="stable")[..., :keep]
    return np.take_along_axis(ids, order, axis=-1), np.take_along_axis(fused, order, axis=-1)


def nearest_other_rows(
    index: VectorIndex, vectors: NDArray[np.float32]
) -> Callable[[NDArray[np.int64], int], NDArray[np.int64]]:
    """rows, k -> each row's k nearest other rows by meaning (-1 pads): `Catalog.nearest`."""

    def nearest(rows: NDArray[np.int64], k: int) -> NDArray[np.int64]:
        # One more than k: each row finds itself, which drop_self removes.
        scores, ids = index.search(vectors[rows], k + 1)
        return drop_self(rows, ids, scores, k)[0]

    return nearest


def candidate_batches(
    index: VectorIndex,
    queries: NDArray[np.float32],
    rows: NDArray[np.int64],
    k: int,
    batch: int = SEARCH_BATCH,
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]]:
    """The vector-search part of precomputing: for catalog `rows` (whose vectors are `queries`),
    their nearest other rows, a pool `POOL_FACTOR` times wider than the k kept, best first
    (-1 pads). Yields (rows, candidate ids, semantic scores) per `batch` rows."""
    pool = max(1, min(k * POOL_FACTOR, index.size - 1))
    # One more than the pool: each row finds itself, which drop_self removes.
    for start, scores, ids in index.search_batches(queries, pool + 1, batch):
        found = rows[start : start + len(ids)]
        pool_ids, pool_scores = drop_self(found, ids, scores, pool)
        yield found, pool_ids, pool_scores


class ScoredPools:
    """Every row's candidate pool with its cosines and the hybrid scores of the signals before
    the first that rescales, as the fit scored them (`pool_scorer`), so that the neighbour
    stage rescales them instead of scoring every pool a second time. About 1.5 KB an article
    (a pool of 128), held in an unlinked temporary file in `directory` (the run's scratch
    directory; the system's temporary directory when None) rather than in memory, so that
    keeping them costs disk, not memory that grows with the catalog. Close it when done."""

    def __init__(self, count: int, directory: Path | None = None) -> None:
        self._directory = directory if directory is not None else Path(tempfile.gettempdir())
        self._file = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115 (closed by `close`)
        self._record: np.dtype[Any] | None = None
        self._filled = np.zeros(count, dtype=bool)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def put(
        self,
        rows: NDArray[np.int64],
        ids: NDArray[np.int64],
        cosines: NDArray[np.float32],
        scores: NDArray[np.float32],
    ) -> None:
        if self._record is None:
            pool = (ids.shape[1],)
            self._record = np.dtype(
                [("ids", "<i4", pool), ("cos", "<f4", pool), ("sc", "<f4", pool)]
            )
        records = np.empty(len(rows), self._record)
        records["ids"], records["cos"], records["sc"] = ids, cosines, scores
        size = self._record.itemsize
        # One write per run of consecutive rows (a fit measures its rows in blocks).
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for run_rows, run in zip(np.split(rows, breaks), np.split(records, breaks), strict=True):
            self._write(run.tobytes(), int(run_rows[0]) * size)
        self._filled[rows] = True

    def _write(self, data: bytes, offset: int) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.pwrite(self._file.fileno(), view, offset)
                view, offset = view[written:], offset + written
        except OSError as exc:
            raise StorageError(
                f"cannot write the scored candidate pools in {self._directory} ({exc}): "
                "is the disk full?"
            ) from exc

    @property
    def complete(self) -> bool:
        """Whether every row's pool was scored (the fit measures none when nothing rescales)."""
        return self._record is not None and bool(self._filled.all())

    def block(
        self, start: int, stop: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.float32]]:
        """(ids, cosines, scores) of the rows start:stop."""
        assert self._record is not None, "only a complete set of pools is read"
        size = self._record.itemsize
        data = os.pread(self._file.fileno(), (stop - start) * size, start * size)
        records = np.frombuffer(data, self._record)
        return records["ids"].astype(np.int64), records["cos"].copy(), records["sc"].copy()


def pool_scorer(
    index: VectorIndex,
    vectors: NDArray[np.float32],
    published: NDArray[np.float64],
    k: int,
    keep: ScoredPools | None = None,
) -> PoolScores:
    """`Catalog.pools`: rows, parts, weights -> the candidate pools that lists of k are chosen
    from, with the hybrid scores of the signals whose parts are given; each also put in `keep`
    (when given) for the neighbour stage."""

    def pools(
        rows: NDArray[np.int64], parts: Mapping[str, Any], weights: FusionWeights
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        features = {s.name: s.rows(parts[s.name]) for s in SIGNALS if s.name in parts}
        side = Side(vectors, published, features)
        width = max(1, min(k, len(vectors) - 1))
        [(found, ids, cosines)] = candidate_batches(
            index, vectors[rows], rows, width, batch=max(1, len(rows))
        )
        scores = pair_scores(parts, side, found, Candidates(side, ids, cosines), weights)
        if keep is not None:
            keep.put(found, ids, cosines, scores)
        return ids, scores

    return pools


@dataclass(frozen=True, slots=True)
class NeighbourScoring:
    """What every block of neighbour lists reads (sent to each worker once, `BlockJob.shared`)."""

    index: VectorIndex
    side: Side
    """The version's articles, whose signal parts are `parts`."""
    parts: Mapping[str, Any]
    weights: FusionWeights
    width: int
    """Neighbours kept per row."""
    scored: ScoredPools | None = None
    """The pools as the fit scored them, if it kept them (a build in this process)."""


def neighbour_block(
    scoring: NeighbourScoring, rows: tuple[int, int]
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The best `scoring.width` other rows, by hybrid score, of the rows start:stop: their
    candidates searched together, then scored by the registered signals."""
    start, stop = rows
    side = scoring.side
    before = None
    if scoring.scored is not None:
        found = np.arange(start, stop, dtype=np.int64)
        pool_ids, pool_scores, before = scoring.scored.block(start, stop)
    else:
        [(found, pool_ids, pool_scores)] = candidate_batches(
            scoring.index,
            side.vectors[start:stop],
            np.arange(start, stop, dtype=np.int64),
            scoring.width,
            batch=stop - start,
        )
    candidates = Candidates(side, pool_ids, pool_scores)
    fused = pair_scores(scoring.parts, side, found, candidates, scoring.weights, before)
    return rank_by_fusion(pool_ids, fused, scoring.width)


def precompute_neighbours(
    index: VectorIndex,
    side: Side,
    parts: Mapping[str, Any],
    weights: FusionWeights,
    k: int,
    on_batch: Callable[[int], None] | None = None,
    batch: int = SEARCH_BATCH,
    executor: BlockExecutor = LOCAL,
    scored: ScoredPools | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """The k best other rows for every row of `side` (the version's articles, whose signal
    parts are `parts`), best first (-1 / -inf pad short lists), `batch` rows at a time, each
    block run by `executor` (the same lists wherever it runs them); from the pools `scored`
    where the fit kept them all."""
    count = len(side.vectors)
    width = max(1, min(k, count - 1))
    all_ids = np.full((count, width), -1, dtype=np.int32)
    all_scores = np.full((count, width), -np.inf, dtype=np.float32)
    job = BlockJob(
        "neighbours",
        NeighbourScoring(
            index, side, parts, weights, width, scored if scored and scored.complete else None
        ),
        neighbour_block,
    )
    blocks = [(start, min(start + batch, count)) for start in range(0, count, batch)]
    for (start, stop), (best_ids, best_scores) in zip(
        blocks, executor.map(job, blocks), strict=True
    ):
        all_ids[start:stop, : best_ids.shape[1]] = best_ids
        all_scores[start:stop, : best_scores.shape[1]] = best_scores
        if on_batch:
            on_batch(stop - start)
    return all_ids, all_scores
