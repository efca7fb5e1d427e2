"""The hybrid score: the registered signals' scores, weighted and summed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recommender.ranking import SECONDS_PER_DAY
from recommender.signals.base import fuse
from recommender.signals.registry import SIGNALS, fusion_weights
from recommender.signals.time_proximity import date_informativeness, time_proximity

NOW = 1_700_000_000.0


def hybrid(
    parameters: Mapping[str, float],
    semantic: NDArray[np.float32],
    times: NDArray[np.float64],
    tfidf: NDArray[np.float32] | None = None,
    bm25: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """The hybrid score of candidates published at `times` for a source published at NOW, before
    local scaling (`tests/recommender/test_local_scaling.py`)."""
    weights = fusion_weights(parameters)
    days = np.abs(times - NOW) / SECONDS_PER_DAY
    zeros = np.zeros_like(semantic)
    raw: dict[str, NDArray[np.floating[Any]]] = {
        "semantic": semantic,
        "lexical": zeros if tfidf is None else tfidf,
        "bm25": zeros if bm25 is None else bm25,
        "time": time_proximity(days, weights["time_scale_days"]),
        "clicks": zeros,  # readers' clicks weigh 0 by default
    }
    return fuse([(s.weight(weights), raw[s.name]) for s in SIGNALS if not s.rescales])


def test_fused_score_adds_both_lexical_signals_and_time_proximity() -> None:
    weights = {"lexical": 0.5, "bm25": 0.25, "time": 0.2, "time_scale_days": 3}
    semantic = np.array([0.5, 0.5, 0.5, 0.5], dtype=np.float32)
    tfidf = np.array([0.0, 0.4, 0.0, 0.0], dtype=np.float32)
    bm25 = np.array([0.0, 0.0, 0.0, 0.8], dtype=np.float32)
    times = np.array([NOW, NOW, np.nan, np.nan])
    assert np.allclose(hybrid(weights, semantic, times, tfidf, bm25), [0.7, 0.9, 0.5, 0.7])
    far = hybrid(weights, semantic[:1], np.array([NOW + 30 * 86400]), tfidf[:1], bm25[:1])
    assert far[0] < 0.5 + 0.2 * 0.01


def test_a_manifest_without_bm25_scores_without_it() -> None:
    """Versions built before BM25 was a signal name no weight for it: they keep their scores."""
    legacy = {"lexical": 1.0, "time": 0.0, "date_informativeness": 1.0}
    one = np.ones(1, np.float32)
    assert np.allclose(hybrid(legacy, one, np.array([NOW]), bm25=one), [1.0])


def test_the_time_signal_is_scaled_by_the_catalogs_date_informativeness() -> None:
    semantic = np.array([0.5, 0.5], dtype=np.float32)
    times = np.array([NOW, NOW + 300 * SECONDS_PER_DAY])
    half = {"lexical": 0.0, "time": 1.0, "date_informativeness": 0.5}
    assert np.allclose(hybrid(half, semantic, times), [1.0, 0.5])
    silent = {"lexical": 0.0, "time": 1.0, "date_informativeness": 0.0}
    assert np.allclose(hybrid(silent, semantic, times), [0.5, 0.5])


def test_date_informativeness_compares_neighbours_in_time_with_random_pairs() -> None:
    rng = np.random.default_rng(7)
    spread = rng.uniform(0, 3000, 5000)  # random pairs: years apart, proximity ~0.002
    same_story = rng.uniform(0, 1, 500)  # neighbours by meaning within a day of each other
    assert date_informativeness(same_story, spread, 3.0) > 0.7
    assert date_informativeness(rng.uniform(0, 3000, 500), spread, 3.0) < 0.01
    newswire = rng.uniform(0, 200, 5000)  # a few months of wire: every day crowded
    topical = rng.uniform(0, 60, 500)  # neighbours by topic, weeks apart
    assert 0.0 < date_informativeness(topical, newswire, 3.0) < 0.1
    with_undated = np.concatenate([same_story, np.full(500, np.nan)])
    assert date_informativeness(with_undated, spread, 3.0) == date_informativeness(
        same_story, spread, 3.0
    )
    assert date_informativeness(np.full(3, np.nan), spread, 3.0) == 0.0
    assert date_informativeness(np.zeros(3), np.zeros(3), 3.0) == 0.0  # all at one moment
