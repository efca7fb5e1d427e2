"""Precomputed candidate lists: each article's best other rows under the hybrid score, so that
serving is a lookup.

Candidates come from a batched FAISS search (a pool wider than what is kept), are re-scored
with the fused semantic + lexical + time score, and the best are stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from index.versions.vector_index import VectorIndex
from recommender.bm25 import coverage_queries
from recommender.ranking import (
    SECONDS_PER_DAY,
    FusionWeights,
    LexicalScores,
    date_informativeness,
    fused_scores,
)
from recommender.tfidf import pair_similarities

#: Candidates examined per article, as a multiple of those kept.
POOL_FACTOR = 2
#: Dated articles whose nearest neighbours measure the catalog's date informativeness.
INFORMATIVENESS_SAMPLE = 2_000
#: Nearest neighbours by meaning per sampled article, and random pairs for the chance level.
INFORMATIVENESS_NEIGHBOURS = 5
INFORMATIVENESS_PAIRS = 100_000


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
    ids: NDArray[np.int64],
    semantic: NDArray[np.float32],
    lexical: LexicalScores,
    source_times: NDArray[np.float64],
    published: NDArray[np.float64],
    weights: FusionWeights,
    keep: int,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Re-score candidate rows (-1 = none) with the hybrid score; best `keep` first."""
    times = published[np.where(ids >= 0, ids, 0)]
    fused = fused_scores(semantic, lexical, source_times[..., None], times, weights)
    fused[ids < 0] = -np.inf
    order = np.argsort(-fused, axis=-1, kind="stable")[..., :keep]
    return np.take_along_axis(ids, order, axis=-1), np.take_along_axis(fused, order, axis=-1)


def candidate_batches(
    index: VectorIndex, queries: NDArray[np.float32], rows: NDArray[np.int64], k: int
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]]:
    """The vector-search part of precomputing: for catalog `rows` (whose vectors are `queries`),
    their nearest other rows, a pool `POOL_FACTOR` times wider than the k kept, best first
    (-1 pads). Yields (rows, candidate ids, semantic scores) per batch."""
    pool = max(1, min(k * POOL_FACTOR, index.size - 1))
    # One more than the pool: each row finds itself, which drop_self removes.
    for start, scores, ids in index.search_batches(queries, pool + 1):
        batch = rows[start : start + len(ids)]
        pool_ids, pool_scores = drop_self(batch, ids, scores, pool)
        yield batch, pool_ids, pool_scores


def measure_date_informativeness(
    index: VectorIndex, vectors: NDArray[np.float32], published: NDArray[np.float64], scale: float
) -> float:
    """The catalog's `date_informativeness` (recommender.ranking), from a seeded sample of dated
    articles and their nearest other articles by meaning (the same on every rebuild of it)."""
    dated = np.flatnonzero(~np.isnan(published))
    if len(dated) < 2:
        return 0.0
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(dated, min(INFORMATIVENESS_SAMPLE, len(dated)), replace=False))
    width = min(INFORMATIVENESS_NEIGHBOURS, index.size - 1)
    scores, ids = index.search(vectors[sample], width + 1)
    ids, _ = drop_self(sample, ids, scores, width)
    near_times = np.where(ids >= 0, published[np.maximum(ids, 0)], np.nan)
    near_days = np.abs(near_times - published[sample][:, None]) / SECONDS_PER_DAY
    left, right = rng.choice(dated, (2, INFORMATIVENESS_PAIRS))
    pair_days = np.abs(published[left] - published[right])[left != right] / SECONDS_PER_DAY
    return date_informativeness(near_days.ravel(), pair_days, scale)


def precompute_neighbours(
    index: VectorIndex,
    vectors: NDArray[np.float32],
    lexical: sp.csr_matrix,
    bm25: sp.csr_matrix,
    published: NDArray[np.float64],
    weights: FusionWeights,
    k: int,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """The k best other rows for every row, best first (-1 / -inf pad short lists).

    `lexical` holds the TF-IDF rows, `bm25` the BM25 document rows (`recommender.bm25`).
    """
    bm25_queries = coverage_queries(bm25)
    count = len(vectors)
    width = max(1, min(k, count - 1))
    all_ids = np.full((count, width), -1, dtype=np.int32)
    all_scores = np.full((count, width), -np.inf, dtype=np.float32)
    every_row = np.arange(count, dtype=np.int64)
    for rows, pool_ids, pool_scores in candidate_batches(index, vectors, every_row, width):
        lexical_scores = LexicalScores(
            tfidf=pair_similarities(lexical, rows, pool_ids),
            bm25=pair_similarities(bm25_queries, rows, pool_ids, documents=bm25),
        )
        best_ids, best_scores = rank_by_fusion(
            pool_ids, pool_scores, lexical_scores, published[rows], published, weights, width
        )
        all_ids[rows, : best_ids.shape[1]] = best_ids
        all_scores[rows, : best_scores.shape[1]] = best_scores
        if on_batch:
            on_batch(len(rows))
    return all_ids, all_scores
