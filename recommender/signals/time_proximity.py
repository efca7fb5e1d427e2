"""Publication-time proximity: coverage of one story clusters within days, so being published
close to the source is evidence of relatedness; it adds nothing when either date is unknown.

score = exp(-|days apart| / `time_scale_days`), weighted by `time` x `date_informativeness`.
How much evidence a date is depends on the catalog: in a newswire with a hundred stories a day,
being published the same day says little. `date_informativeness` (0..1) is measured on the
catalog at each reindex and scales the weight accordingly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from recommender.ranking import SECONDS_PER_DAY, FusionWeights
from recommender.signals.base import Candidates, Catalog, RankingSignal, Reason, Side, Source

#: Dated articles whose nearest neighbours measure the catalog's date informativeness.
INFORMATIVENESS_SAMPLE = 2_000
#: Nearest neighbours by meaning per sampled article, and random pairs for the chance level.
INFORMATIVENESS_NEIGHBOURS = 5
INFORMATIVENESS_PAIRS = 100_000


def time_proximity(days_apart: NDArray[np.float64], scale_days: float) -> NDArray[np.float64]:
    """exp(-days / scale): 1 on the same moment, 0 when a date is unknown (NaN)."""
    return np.nan_to_num(np.exp(-days_apart / scale_days), nan=0.0)


def date_informativeness(
    neighbour_days: NDArray[np.float64], random_pair_days: NDArray[np.float64], scale_days: float
) -> float:
    """How much closer in time articles are to their nearest neighbours by meaning than random
    pairs are, on 0..1: (near - chance) / (1 - chance) of the mean time proximity.

    NaN days (undated) are ignored; 0 when either side has no dated pair.
    """
    near_days = neighbour_days[~np.isnan(neighbour_days)]
    pair_days = random_pair_days[~np.isnan(random_pair_days)]
    if not len(near_days) or not len(pair_days):
        return 0.0
    near = float(time_proximity(near_days, scale_days).mean())
    chance = float(time_proximity(pair_days, scale_days).mean())
    if chance >= 1.0:
        return 0.0  # every article published at one moment: dates tell nothing apart
    return min(1.0, max(0.0, (near - chance) / (1.0 - chance)))


def measure_date_informativeness(catalog: Catalog, scale: float) -> float:
    """The catalog's `date_informativeness`, from a seeded sample of dated articles and their
    nearest other articles by meaning (the same on every rebuild of it)."""
    published = catalog.published
    dated = np.flatnonzero(~np.isnan(published))
    if len(dated) < 2:
        return 0.0
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(dated, min(INFORMATIVENESS_SAMPLE, len(dated)), replace=False))
    ids = catalog.nearest(sample, min(INFORMATIVENESS_NEIGHBOURS, len(published) - 1))
    near_times = np.where(ids >= 0, published[np.maximum(ids, 0)], np.nan)
    near_days = np.abs(near_times - published[sample][:, None]) / SECONDS_PER_DAY
    left, right = rng.choice(dated, (2, INFORMATIVENESS_PAIRS))
    pair_days = np.abs(published[left] - published[right])[left != right] / SECONDS_PER_DAY
    return date_informativeness(near_days.ravel(), pair_days, scale)


class TimeProximity(RankingSignal):
    name = "time"
    parameters: ClassVar[Mapping[str, float]] = {
        "time": 1.5,
        "time_scale_days": 3.0,
        # Versions built before it was measured scored with the whole time weight.
        "date_informativeness": 1.0,
    }

    def weight(self, weights: FusionWeights) -> float:
        return weights["time"] * weights["date_informativeness"]

    def measure(self, catalog: Catalog, weights: FusionWeights) -> dict[str, float]:
        informativeness = measure_date_informativeness(catalog, weights["time_scale_days"])
        return {"date_informativeness": round(informativeness, 4)}

    def pairs(
        self,
        part: Any,
        side: Side,
        sources: NDArray[np.int64],
        candidates: Candidates,
        weights: FusionWeights,
    ) -> NDArray[np.float64]:
        return self._proximity(side.published[sources][:, None], candidates, weights)

    def scores(
        self, part: Any, source: Source, candidates: Candidates, weights: FusionWeights
    ) -> NDArray[np.float64]:
        return self._proximity(np.asarray(source.published), candidates, weights)

    @staticmethod
    def _proximity(
        source_times: NDArray[np.float64], candidates: Candidates, weights: FusionWeights
    ) -> NDArray[np.float64]:
        rows = candidates.rows
        times = candidates.side.published[np.where(rows >= 0, rows, 0)]
        days_apart = np.abs(times - source_times) / SECONDS_PER_DAY
        return time_proximity(days_apart, weights["time_scale_days"])

    def explain(
        self, part: Any, source: tuple[Side, int], target: tuple[Side, int], weights: FusionWeights
    ) -> dict[str, Any]:
        (source_side, source_row), (target_side, target_row) = source, target
        seconds = abs(source_side.published[source_row] - target_side.published[target_row])
        days = seconds / SECONDS_PER_DAY
        return {"days_apart": None if np.isnan(days) else round(float(days), 1)}

    def reasons(self, why: Mapping[str, Any]) -> list[Reason]:
        if why["days_apart"] is None:
            return []
        return [
            Reason(
                f"{why['days_apart']} days apart",
                "Days between the two stories' publication dates",
            )
        ]
