"""Precomputed candidate lists: each article's nearest rows, so serving is a lookup."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from index.vectors import VectorIndex


def drop_self(
    rows: NDArray[np.int64], ids: NDArray[np.int64], scores: NDArray[np.float32], k: int
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Remove each query's own row from its results and keep the first k of the rest."""
    keep = ids != rows[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    kept_ids = np.take_along_axis(ids, order, axis=1)
    kept_scores = np.take_along_axis(scores, order, axis=1)
    invalid = ~np.take_along_axis(keep, order, axis=1) | (kept_ids < 0)
    kept_ids[invalid] = -1
    kept_scores[invalid] = -np.inf
    return kept_ids.astype(np.int32), kept_scores.astype(np.float32)


def precompute_neighbours(
    index: VectorIndex,
    vectors: NDArray[np.float32],
    k: int,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """The k best other rows for every row (batched FAISS search), best first."""
    count = len(vectors)
    width = max(1, min(k, count - 1))
    all_ids = np.full((count, width), -1, dtype=np.int32)
    all_scores = np.full((count, width), -np.inf, dtype=np.float32)
    for start, scores, ids in index.search_batches(vectors, width + 1):
        rows = np.arange(start, start + len(ids), dtype=np.int64)
        kept_ids, kept_scores = drop_self(rows, ids, scores, width)
        all_ids[start : start + len(ids), : kept_ids.shape[1]] = kept_ids
        all_scores[start : start + len(ids), : kept_scores.shape[1]] = kept_scores
        if on_batch:
            on_batch(len(ids))
    return all_ids, all_scores
