"""Local scaling (`recommender.signals.local_scaling`): a candidate's hybrid score measured
against its own usual scores, so that an article close to everything counts for less."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from recommender.ranking import FusionWeights
from recommender.signals.base import Candidates, Side
from recommender.signals.local_scaling import (
    NAME,
    SPREAD_FLOOR,
    LocalScaling,
    ScalingPart,
    pool_statistics,
)

SIGNAL = LocalScaling()
#: Rows 0-2 of a version: a hub (high mean), an ordinary article, one with a narrow spread.
STATISTICS = np.array([[0.8, 0.1], [0.3, 0.1], [0.3, 0.001]], dtype=np.float32)
PART = ScalingPart(STATISTICS, typical_mean=0.3, typical_spread=0.1)


def _candidates(rows: list[int], statistics: NDArray[np.float32] | None = STATISTICS) -> Candidates:
    features = {} if statistics is None else {NAME: statistics}
    side = Side(np.zeros((3, 2), np.float32), np.zeros(3), features)
    return Candidates(side, np.array(rows, dtype=np.int64), np.zeros(len(rows), np.float32))


def _weights(weight: float) -> FusionWeights:
    return FusionWeights(local_scaling=weight)


def test_a_candidate_close_to_everything_counts_for_less() -> None:
    total = np.array([0.9, 0.9], dtype=np.float32)
    rescaled = SIGNAL.rescale(PART, total, _candidates([0, 1]), _weights(0.5))
    # score + weight x m x (score - mean) / spread, m the catalog's median spread
    assert rescaled == pytest.approx([0.9 + 0.5 * 0.1 * 0.1 / 0.1, 0.9 + 0.5 * 0.1 * 0.6 / 0.1])
    assert rescaled[1] > rescaled[0]  # equal scores: the ordinary article ranks first
    assert rescaled.dtype == np.float32


def test_a_narrow_spread_is_floored_at_a_share_of_the_typical_one() -> None:
    total = np.array([0.5], dtype=np.float32)
    rescaled = SIGNAL.rescale(PART, total, _candidates([2]), _weights(1.0))
    floor = SPREAD_FLOOR * PART.typical_spread
    assert rescaled[0] == pytest.approx(0.5 + 0.1 * (0.5 - 0.3) / floor)


def test_pairs_in_any_shape_and_padding_rows_are_rescaled_alike() -> None:
    total = np.array([[0.9, 0.4], [0.7, 0.0]], dtype=np.float32)
    candidates = _candidates([0, 1])
    rows = np.array([[0, 1], [1, -1]], dtype=np.int64)
    pairs = Candidates(candidates.side, rows, np.zeros(rows.shape, np.float32))
    rescaled = SIGNAL.rescale(PART, total, pairs, _weights(1))
    assert rescaled.shape == (2, 2)
    one = SIGNAL.rescale(PART, np.array([0.7], np.float32), _candidates([1]), _weights(1))
    assert rescaled[1, 0] == one[0]


@pytest.mark.parametrize(
    ("part", "weight", "statistics"),
    [
        (PART, 0.0, STATISTICS),  # turned off
        (None, 0.5, None),  # a version built before it
        (ScalingPart(STATISTICS, 0.3, 0.0), 0.5, STATISTICS),  # a catalog too small to measure
    ],
)
def test_off_or_absent_it_leaves_the_scores_as_they_are(
    part: ScalingPart | None, weight: float, statistics: NDArray[np.float32] | None
) -> None:
    total = np.array([0.9, 0.2], dtype=np.float32)
    rescaled = SIGNAL.rescale(part, total, _candidates([0, 1], statistics), _weights(weight))
    assert rescaled is total


def test_live_articles_and_drafts_count_as_a_typical_article() -> None:
    stacked = SIGNAL.stack(PART, [None, None])
    assert stacked.tolist() == [pytest.approx([0.3, 0.1])] * 2
    assert SIGNAL.stack(None, [None]) is None


def test_pool_statistics_are_the_mean_and_spread_over_each_pool_without_its_padding() -> None:
    scores = {
        0: ([1, 2, -1], [0.5, 0.7, -np.inf]),
        1: ([0, 2, 3], [0.2, 0.2, 0.8]),
        2: ([-1, -1, -1], [-np.inf] * 3),
        3: ([0, 1, 2], [0.1, 0.2, 0.3]),
    }

    def pools(
        rows: NDArray[np.int64], parts: Mapping[str, Any], weights: FusionWeights
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        assert parts == {"semantic": None} and weights["local_scaling"] == 0.5
        ids = np.array([scores[row][0] for row in rows.tolist()], dtype=np.int64)
        return ids, np.array([scores[row][1] for row in rows.tolist()], dtype=np.float32)

    rows = np.arange(4, dtype=np.int64)
    measured = pool_statistics(pools, rows, {"semantic": None}, _weights(0.5), block=3)
    assert measured[0] == pytest.approx([0.6, 0.1])
    assert measured[1] == pytest.approx([0.4, np.std([0.2, 0.2, 0.8])])
    assert measured[2].tolist() == [0.0, 0.0]  # no candidate at all
    assert measured[3] == pytest.approx([0.2, np.std([0.1, 0.2, 0.3])])
