"""Ranking metrics for leave-one-out evaluation of suggestion lists (pure functions).

A source's suggestions are a ranked sequence of ids; its ground truth is either a collection of
relevant ids (binary gain 1) or a mapping id -> gain (graded; a gain <= 0 is not relevant).
Definitions, for a list cut at `k`:

* precision@k = relevant hits in the top k / k (a list shorter than k is padded with misses);
* recall@k = relevant hits in the top k / number of relevant ids (the standard denominator, so
  recall@k stays below 1 when there are more than k relevant ids);
* nDCG@k = DCG / ideal DCG, `DCG = sum(gain_i / log2(i + 1))` over ranks i = 1..k with linear
  gains, the ideal taking the k largest gains in order; with binary gain the ideal is
  `min(k, #relevant)` hits, as in the peers' protocol;
* reciprocal rank = 1 / rank of the first relevant id (0 when none): its mean is MRR.

An id repeated in a list counts at its first rank only. Sources without any relevant id have no
recall or nDCG; the protocol leaves them out, and these functions refuse them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

Id = TypeVar("Id", bound=Hashable)

#: The keys of `aggregate`'s result, in display order.
METRIC_NAMES = (
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "mrr",
    "coverage",
    "full_list_rate",
    "intra_list_similarity",
)

#: Ground truth of one source: relevant ids, or ids with their graded gains.
Relevance = Collection[Id] | Mapping[Id, float]


def _gains(relevant: Relevance[Id]) -> dict[Id, float]:
    if isinstance(relevant, Mapping):
        gains = {item: float(gain) for item, gain in relevant.items() if gain > 0}
    else:
        gains = dict.fromkeys(relevant, 1.0)
    if not gains:
        raise ValueError("no relevant ids: the metric is undefined for this source")
    return gains


def _first_k(ranked: Sequence[Id], k: int) -> list[Id]:
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    return list(dict.fromkeys(ranked[:k]))


def precision_at_k(ranked: Sequence[Id], relevant: Relevance[Id], k: int) -> float:
    """Share of the k slots holding a relevant id."""
    gains = _gains(relevant)
    return sum(item in gains for item in _first_k(ranked, k)) / k


def recall_at_k(ranked: Sequence[Id], relevant: Relevance[Id], k: int) -> float:
    """Share of the relevant ids found in the top k."""
    gains = _gains(relevant)
    return sum(item in gains for item in _first_k(ranked, k)) / len(gains)


def ndcg_at_k(ranked: Sequence[Id], relevant: Relevance[Id], k: int) -> float:
    """Normalised discounted cumulative gain of the top k (linear gains)."""
    gains = _gains(relevant)
    dcg = sum(
        gains.get(item, 0.0) / math.log2(rank + 1)
        for rank, item in enumerate(_first_k(ranked, k), start=1)
    )
    best = sorted(gains.values(), reverse=True)[:k]
    ideal = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(best, start=1))
    return dcg / ideal


def reciprocal_rank(ranked: Sequence[Id], relevant: Relevance[Id], k: int | None = None) -> float:
    """1 / rank of the first relevant id (within the top k when given), else 0."""
    gains = _gains(relevant)
    for rank, item in enumerate(ranked[:k] if k is not None else ranked, start=1):
        if item in gains:
            return 1.0 / rank
    return 0.0


def full_list(ranked: Sequence[Id], k: int) -> bool:
    """Whether the list holds k suggestions."""
    return len(ranked) >= k


def intra_list_similarity(vectors: NDArray[np.floating]) -> float | None:
    """Mean cosine over all pairs of a list's item vectors (one per row); None below two items.

    A zero vector counts as dissimilar (cosine 0) to everything.
    """
    if len(vectors) < 2:
        return None
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    cosine = unit @ unit.T
    n = len(unit)
    return float((cosine.sum() - np.trace(cosine)) / (n * (n - 1)))


def catalog_coverage(lists: Iterable[Sequence[Id]], catalog_size: int) -> float:
    """Share of a catalog of `catalog_size` items that appears in at least one list."""
    if catalog_size < 1:
        raise ValueError("the catalog is empty")
    return len({item for ranked in lists for item in ranked}) / catalog_size


@dataclass(frozen=True, slots=True)
class SourceScores:
    """The per-source values of one suggestion list."""

    precision_at_k: float
    recall_at_k: float
    ndcg_at_k: float
    reciprocal_rank: float
    full_list: bool
    intra_list_similarity: float | None = None


def score_source(
    ranked: Sequence[Id],
    relevant: Relevance[Id],
    k: int,
    vectors: NDArray[np.floating] | None = None,
) -> SourceScores:
    """All per-source metrics of one list cut at k; `vectors` are the suggested items' rows."""
    top = ranked[:k]
    return SourceScores(
        precision_at_k=precision_at_k(top, relevant, k),
        recall_at_k=recall_at_k(top, relevant, k),
        ndcg_at_k=ndcg_at_k(top, relevant, k),
        reciprocal_rank=reciprocal_rank(top, relevant),
        full_list=full_list(top, k),
        intra_list_similarity=intra_list_similarity(vectors[:k]) if vectors is not None else None,
    )


def aggregate(
    per_source: Sequence[SourceScores], lists: Iterable[Sequence[Id]], catalog_size: int
) -> dict[str, float]:
    """Mean of each per-source value, plus the catalog coverage of all `lists`.

    `intra_list_similarity` is averaged over the lists that have one (NaN when none has).
    """
    if not per_source:
        raise ValueError("no sources to aggregate")
    similarities = [
        s.intra_list_similarity for s in per_source if s.intra_list_similarity is not None
    ]
    return {
        "precision_at_k": float(np.mean([s.precision_at_k for s in per_source])),
        "recall_at_k": float(np.mean([s.recall_at_k for s in per_source])),
        "ndcg_at_k": float(np.mean([s.ndcg_at_k for s in per_source])),
        "mrr": float(np.mean([s.reciprocal_rank for s in per_source])),
        "coverage": catalog_coverage(lists, catalog_size),
        "full_list_rate": float(np.mean([s.full_list for s in per_source])),
        "intra_list_similarity": float(np.mean(similarities)) if similarities else math.nan,
    }
