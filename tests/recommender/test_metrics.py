"""Ranking metrics: hand-computed cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender.evaluation.metrics import (
    SourceScores,
    aggregate,
    catalog_coverage,
    full_list,
    intra_list_similarity,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    score_source,
)

LOG3 = math.log2(3)  # the discount of rank 2


def test_binary_hand_computed() -> None:
    ranked = ["a", "b", "c", "d", "e"]
    relevant = {"b", "d", "x"}
    assert precision_at_k(ranked, relevant, 5) == pytest.approx(2 / 5)
    assert recall_at_k(ranked, relevant, 5) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, relevant, 1) == 0
    dcg = 1 / LOG3 + 1 / math.log2(5)
    assert ndcg_at_k(ranked, relevant, 5) == pytest.approx(dcg / (1 + 1 / LOG3 + 1 / 2))
    assert reciprocal_rank(ranked, relevant) == pytest.approx(1 / 2)
    assert reciprocal_rank(ranked, relevant, k=1) == 0


def test_ideal_is_capped_by_the_number_of_relevant_ids() -> None:
    # Two relevant ids and k = 5: ideal DCG is 1 + 1/log2(3), as in the peers' protocol.
    assert ndcg_at_k(["x", "b", "a"], {"a", "b"}, 5) == pytest.approx(
        (1 / LOG3 + 1 / 2) / (1 + 1 / LOG3)
    )
    # More relevant ids than k: the ideal is k hits.
    assert ndcg_at_k(["a", "z"], set("abcdefg"), 2) == pytest.approx(1 / (1 + 1 / LOG3))


def test_fewer_than_k_results() -> None:
    ranked = ["b"]
    relevant = {"b", "c"}
    assert precision_at_k(ranked, relevant, 5) == pytest.approx(1 / 5)
    assert recall_at_k(ranked, relevant, 5) == pytest.approx(1 / 2)
    assert ndcg_at_k(ranked, relevant, 5) == pytest.approx(1 / (1 + 1 / LOG3))
    assert not full_list(ranked, 5)
    assert full_list(["a"] * 5, 5)


def test_no_relevant_id_in_the_list() -> None:
    ranked = ["a", "c"]
    assert precision_at_k(ranked, {"z"}, 2) == 0
    assert recall_at_k(ranked, {"z"}, 2) == 0
    assert ndcg_at_k(ranked, {"z"}, 2) == 0
    assert reciprocal_rank(ranked, {"z"}) == 0
    assert ndcg_at_k([], {"z"}, 2) == 0


def test_graded_gain() -> None:
    gains = {"a": 1.0, "b": 0.0, "c": 3.0, "d": 2.0}  # b's zero gain: not relevant
    ranked = ["a", "b", "c"]
    ideal = 3 + 2 / LOG3 + 1 / 2
    assert ndcg_at_k(ranked, gains, 3) == pytest.approx((1 + 3 / 2) / ideal)
    assert precision_at_k(ranked, gains, 3) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, gains, 3) == pytest.approx(2 / 3)
    assert reciprocal_rank(["b", "c"], gains) == pytest.approx(1 / 2)
    assert ndcg_at_k(["c", "d", "a"], gains, 3) == pytest.approx(1)


def test_a_repeated_id_counts_once() -> None:
    assert precision_at_k(["b", "b", "c"], {"b"}, 3) == pytest.approx(1 / 3)
    assert ndcg_at_k(["b", "b"], {"b", "c"}, 2) == pytest.approx(1 / (1 + 1 / LOG3))


def test_undefined_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="no relevant"):
        ndcg_at_k(["a"], set(), 5)
    with pytest.raises(ValueError, match="no relevant"):
        recall_at_k(["a"], {"a": 0.0}, 5)
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(["a"], {"a"}, 0)
    with pytest.raises(ValueError, match="catalog"):
        catalog_coverage([["a"]], 0)
    with pytest.raises(ValueError, match="no sources"):
        aggregate([], [], 1)


def test_intra_list_similarity() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    assert intra_list_similarity(vectors) == pytest.approx((0 + 2 / math.sqrt(2)) / 3)
    assert intra_list_similarity(vectors[:1]) is None
    assert intra_list_similarity(np.array([[0.0, 0.0], [1.0, 0.0]])) == 0


def test_catalog_coverage() -> None:
    assert catalog_coverage([[1, 2], [2, 3], []], 5) == pytest.approx(3 / 5)


def test_score_source_and_aggregate() -> None:
    vectors = np.eye(3, dtype=np.float32)
    first = score_source(["a", "b", "c", "d"], {"b"}, 3, vectors=vectors)
    assert first == SourceScores(1 / 3, 1.0, first.ndcg_at_k, 0.5, True, 0.0)
    assert first.ndcg_at_k == pytest.approx(1 / LOG3)
    second = score_source(["b"], {"b", "e"}, 3)
    result = aggregate([first, second], [["a", "b", "c"], ["b"]], 12)
    assert list(result) == [
        "precision_at_k",
        "recall_at_k",
        "ndcg_at_k",
        "mrr",
        "coverage",
        "full_list_rate",
        "intra_list_similarity",
    ]
    assert result["precision_at_k"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert result["recall_at_k"] == pytest.approx((1 + 1 / 2) / 2)
    assert result["mrr"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["coverage"] == 0.25
    assert result["full_list_rate"] == 0.5
    assert result["intra_list_similarity"] == 0.0  # only the first list has vectors
    assert math.isnan(aggregate([second], [["b"]], 1)["intra_list_similarity"])


ids = st.integers(min_value=0, max_value=15)
ks = st.integers(min_value=1, max_value=8)


@given(ranked=st.lists(ids, max_size=12), relevant=st.sets(ids, min_size=1), k=ks)
def test_metrics_lie_between_zero_and_one(ranked: list[int], relevant: set[int], k: int) -> None:
    for metric in (precision_at_k, recall_at_k, ndcg_at_k):
        assert 0 <= metric(ranked, relevant, k) <= 1 + 1e-12
    assert 0 <= reciprocal_rank(ranked, relevant) <= 1


@given(
    gains=st.dictionaries(ids, st.floats(min_value=0.0, max_value=10.0), min_size=1).filter(
        lambda gains: any(gain > 0 for gain in gains.values())
    ),
    noise=st.lists(ids, max_size=5),
    k=ks,
)
def test_perfect_ranking_scores_one(gains: dict[int, float], noise: list[int], k: int) -> None:
    perfect = sorted((item for item in gains if gains[item] > 0), key=lambda i: -gains[i])
    ranked = perfect + noise
    assert ndcg_at_k(ranked, gains, k) == pytest.approx(1)
    assert reciprocal_rank(ranked, gains) == 1
    relevant = len(perfect)
    assert precision_at_k(ranked, gains, k) == pytest.approx(min(k, relevant) / k)
    assert recall_at_k(ranked, gains, k) == pytest.approx(min(k, relevant) / relevant)


@given(
    vectors=st.lists(
        st.lists(st.floats(min_value=-5, max_value=5), min_size=3, max_size=3),
        min_size=2,
        max_size=6,
    )
)
def test_intra_list_similarity_is_a_cosine(vectors: list[list[float]]) -> None:
    value = intra_list_similarity(np.array(vectors))
    assert value is not None
    assert -1 - 1e-9 <= value <= 1 + 1e-9
