"""Local scaling: a candidate that scores high against everything (a generic roundup, a teaser
written like a hundred others) counts for less than one that stands out only for this source.

It adds no term of its own: it rescales the hybrid score of the signals registered before it,

    score' = score + weight x m x (score - mean_c) / spread_c

where mean_c and spread_c are the mean and standard deviation of candidate c's own hybrid scores
over its own candidate pool (how close c usually is to what lies near it), measured at reindex,
and m the catalog's median spread, which keeps `local_scaling` a plain weight on any catalog. The
source's own z-score would rank a list exactly as the score does, so only the candidate's side
is used: this is mutual proximity (Schnitzer et al. 2012) and CSLS (Conneau et al. 2018) in their
one-sided form. It was chosen leave-one-dataset-out (docs/quality.md, issue 34).

A version stores each row's mean and spread (`local_scaling.npy`) and the catalog's medians
(`local_scaling.json`). Live articles and drafts, which have no pool of their own until the next
reindex, count as a typical article (the medians). Versions built before it load without it and
serve as they were built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from recommender.mapped_files import map_array
from recommender.ranking import FusionWeights
from recommender.signals.base import (
    Candidates,
    Catalog,
    CatalogChange,
    PoolScores,
    RankingSignal,
    Reason,
    Side,
)

NAME = "local_scaling"
STATISTICS = "local_scaling.npy"
"""float32 (count, 2): each row's mean and spread of its hybrid scores over its pool."""
MEDIANS = "local_scaling.json"
#: A spread below this share of the catalog's median is taken as that share (a candidate whose
#: pool scores all alike would otherwise weigh without bound).
SPREAD_FLOOR = 0.25


@dataclass(frozen=True)
class ScalingPart:
    """Each row's mean and spread, and the catalog's medians (a typical article)."""

    statistics: NDArray[np.float32]
    typical_mean: float
    typical_spread: float
    """m; 0 where the catalog is too small to measure one (then nothing is rescaled)."""

    def typical(self, count: int) -> NDArray[np.float32]:
        """`count` rows of a typical article's statistics."""
        return np.tile(
            np.array([self.typical_mean, self.typical_spread], dtype=np.float32), (count, 1)
        )


def pool_statistics(
    pools: PoolScores,
    rows: NDArray[np.int64],
    parts: Mapping[str, Any],
    weights: FusionWeights,
    block: int,
) -> NDArray[np.float32]:
    """(mean, spread) of each of `rows`' hybrid scores over its pool, `block` rows at a time."""
    out = np.zeros((len(rows), 2), dtype=np.float32)
    for start in range(0, len(rows), block):
        ids, scores = pools(rows[start : start + block], parts, weights)
        valid = ids >= 0
        count = np.maximum(valid.sum(axis=1), 1)
        values = np.where(valid, scores, 0.0).astype(np.float64)
        mean = values.sum(axis=1) / count
        variance = np.where(valid, (values - mean[:, None]) ** 2, 0.0).sum(axis=1) / count
        out[start : start + block, 0] = mean
        out[start : start + block, 1] = np.sqrt(variance)
    return out


def _part(statistics: NDArray[np.float32], medians: tuple[float, float] | None) -> ScalingPart:
    """The part of these statistics, with the given medians or those measured on them."""
    if medians is None:
        if len(statistics):
            medians = (float(np.median(statistics[:, 0])), float(np.median(statistics[:, 1])))
        else:
            medians = (0.0, 0.0)
    typical_mean, typical_spread = medians
    return ScalingPart(statistics, typical_mean, typical_spread if typical_spread > 1e-6 else 0.0)


class LocalScaling(RankingSignal):
    name = NAME
    # Versions built before it do not name it, and serve as they were built.
    parameters: ClassVar[Mapping[str, float]] = {NAME: 0.0}
    files = (STATISTICS, MEDIANS)
    rescales = True

    def weight(self, weights: FusionWeights) -> float:
        return weights[NAME]

    def fit(
        self, catalog: Catalog, weights: FusionWeights, fitted: Mapping[str, Any]
    ) -> ScalingPart:
        count = len(catalog.vectors)
        if not weights[NAME]:  # turned off: nothing to measure, nothing rescaled
            return _part(np.zeros((count, 2), dtype=np.float32), (0.0, 0.0))
        rows = np.arange(count, dtype=np.int64)
        return _part(pool_statistics(catalog.pools, rows, fitted, weights, catalog.block), None)

    def update(
        self, part: ScalingPart | None, change: CatalogChange, updated: Mapping[str, Any]
    ) -> ScalingPart:
        """The served rows' statistics reused; the others measured over their pools now, with
        the medians of the last full fit (so an unchanged pair scores exactly as it did)."""
        assert part is not None, "a version built without it is rebuilt in full (build_key)"
        statistics = np.zeros((len(change.reused), 2), dtype=np.float32)
        kept = change.reused >= 0
        statistics[kept] = part.statistics[change.reused[kept]]
        weighed = change.weighed
        if part.typical_spread:  # measured at the last full fit (else it weighs nothing)
            statistics[weighed] = pool_statistics(
                change.pools, weighed, updated, change.weights, change.block
            )
        return _part(statistics, (part.typical_mean, part.typical_spread))

    def save(self, part: ScalingPart, directory: Path) -> None:
        np.save(directory / STATISTICS, np.asarray(part.statistics), allow_pickle=False)
        medians = {"typical_mean": part.typical_mean, "typical_spread": part.typical_spread}
        (directory / MEDIANS).write_text(json.dumps(medians), encoding="utf-8")

    def load(self, directory: Path, count: int, loaded: Mapping[str, Any]) -> ScalingPart:
        statistics = map_array(directory / STATISTICS)
        if statistics.shape != (count, 2):
            raise ValueError(f"{STATISTICS} holds {statistics.shape}, not ({count}, 2)")
        medians = json.loads((directory / MEDIANS).read_text(encoding="utf-8"))
        return _part(statistics, (float(medians["typical_mean"]), float(medians["typical_spread"])))

    def rows(self, part: ScalingPart | None) -> NDArray[np.float32] | None:
        return None if part is None else part.statistics

    def stack(self, part: ScalingPart | None, prepared: Sequence[Any]) -> Any:
        return None if part is None else part.typical(len(prepared))

    def rescale(
        self,
        part: ScalingPart | None,
        total: NDArray[np.float32],
        candidates: Candidates,
        weights: FusionWeights,
    ) -> NDArray[np.float32]:
        statistics = candidates.side.features.get(self.name)
        if part is None or statistics is None or not weights[NAME] * part.typical_spread:
            return total
        factor = weights[NAME] * part.typical_spread
        rows = candidates.rows
        found = statistics[np.where(rows >= 0, rows, 0)]
        spread = np.maximum(found[..., 1], SPREAD_FLOOR * part.typical_spread)
        rescaled: NDArray[np.float32] = (total + factor * (total - found[..., 0]) / spread).astype(
            np.float32
        )
        return rescaled

    def explain(
        self,
        part: ScalingPart | None,
        source: tuple[Side, int],
        target: tuple[Side, int],
        weights: FusionWeights,
    ) -> dict[str, Any]:
        target_side, target_row = target
        statistics = target_side.features.get(self.name)
        if part is None or statistics is None or not part.typical_spread:
            return {}
        mean, spread = (float(value) for value in statistics[target_row])
        return {"usual_score": round(mean, 4), "score_spread": round(spread, 4)}

    def reasons(self, why: Mapping[str, Any]) -> list[Reason]:
        if "usual_score" not in why:
            return []
        return [
            Reason(
                f"usually scores {why['usual_score']:.2f} ± {why['score_spread']:.2f}",
                "Local scaling: this suggestion's mean and spread of scores against the articles "
                "nearest to it; a pair above its usual score counts for more, one that is close "
                "to everything counts for less",
            )
        ]
