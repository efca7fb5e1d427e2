"""Pure ranking steps: filters, embargo, fusion, freshness, MMR and near-duplicate collapse."""

from __future__ import annotations

import numpy as np

from recommender.ranking import (
    SECONDS_PER_DAY,
    CandidateFacts,
    FusionWeights,
    LexicalScores,
    RelatedQuery,
    date_informativeness,
    eligible,
    freshness_penalty,
    fused_scores,
    select,
)

NOW = 1_700_000_000.0


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def facts() -> CandidateFacts:
    return CandidateFacts(
        sections=["world", "sport", "world", None],
        languages=["en", "en", "de", None],
        published=np.array(
            [NOW - 2 * SECONDS_PER_DAY, NOW - 40 * SECONDS_PER_DAY, NOW + 3600, np.nan]
        ),
    )


def test_eligible_applies_filters_embargo_and_exclusions() -> None:
    rows = np.array([0, 1, 2, 3, -1])
    everything = eligible(rows, facts(), RelatedQuery(), excluded_rows=frozenset(), now=NOW)
    assert everything.tolist() == [True, True, False, True, False]  # 2 is embargoed
    world = eligible(
        rows,
        facts(),
        RelatedQuery(sections=frozenset({"world"})),
        excluded_rows=frozenset(),
        now=NOW,
    )
    assert world.tolist() == [True, False, False, False, False]
    recent = eligible(
        rows, facts(), RelatedQuery(max_age_days=7), excluded_rows=frozenset({0}), now=NOW
    )
    assert recent.tolist() == [False, False, False, False, False]
    german = eligible(
        rows, facts(), RelatedQuery(language="de"), excluded_rows=frozenset(), now=NOW
    )
    assert not german.any()  # the only German article is embargoed


def test_embargo_lifts_at_publication_time() -> None:
    rows = np.array([2])
    later = NOW + 7200
    assert eligible(rows, facts(), RelatedQuery(), excluded_rows=frozenset(), now=later).all()


def test_fused_score_adds_both_lexical_signals_and_time_proximity() -> None:
    weights = FusionWeights(lexical=0.5, bm25=0.25, time=0.2, time_scale_days=3)
    semantic = np.array([0.5, 0.5, 0.5, 0.5], dtype=np.float32)
    lexical = LexicalScores(
        tfidf=np.array([0.0, 0.4, 0.0, 0.0], dtype=np.float32),
        bm25=np.array([0.0, 0.0, 0.0, 0.8], dtype=np.float32),
    )
    times = np.array([NOW, NOW, np.nan, np.nan])
    scores = fused_scores(semantic, lexical, np.array(NOW), times, weights)
    assert np.allclose(scores, [0.7, 0.9, 0.5, 0.7])
    first = LexicalScores(tfidf=lexical.tfidf[:1], bm25=lexical.bm25[:1])
    far = fused_scores(semantic[:1], first, np.array(NOW), np.array([NOW + 30 * 86400]), weights)
    assert far[0] < 0.5 + 0.2 * 0.01


def test_a_manifest_without_bm25_scores_without_it() -> None:
    """Versions built before BM25 was a signal name no weight for it: they keep their scores."""
    legacy = FusionWeights(**{"lexical": 1.0, "time": 0.0, "date_informativeness": 1.0})
    lexical = LexicalScores(tfidf=np.zeros(1, np.float32), bm25=np.ones(1, np.float32))
    score = fused_scores(np.ones(1, np.float32), lexical, np.array(NOW), np.array([NOW]), legacy)
    assert np.allclose(score, [1.0])


def test_the_time_signal_is_scaled_by_the_catalogs_date_informativeness() -> None:
    semantic = np.array([0.5, 0.5], dtype=np.float32)
    lexical = LexicalScores(tfidf=np.zeros(2, np.float32), bm25=np.zeros(2, np.float32))
    times = np.array([NOW, NOW + 300 * SECONDS_PER_DAY])
    half = FusionWeights(lexical=0.0, time=1.0, date_informativeness=0.5)
    assert np.allclose(fused_scores(semantic, lexical, np.array(NOW), times, half), [1.0, 0.5])
    silent = FusionWeights(lexical=0.0, time=1.0, date_informativeness=0.0)
    assert np.allclose(fused_scores(semantic, lexical, np.array(NOW), times, silent), [0.5, 0.5])


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


def test_freshness_penalty_halves_at_the_half_life() -> None:
    published = np.array([NOW, NOW - 2 * SECONDS_PER_DAY, NOW - 1000 * SECONDS_PER_DAY, np.nan])
    half_lives = np.array([2.0, 2.0, 2.0, 2.0])
    penalty = freshness_penalty(published, half_lives, NOW, weight=0.2)
    assert np.allclose(penalty, [0.0, 0.1, 0.2, 0.0], atol=1e-6)
    assert freshness_penalty(published[:1], np.array([np.nan]), NOW, 0.2)[0] == 0.0


def test_select_skips_copies_of_the_source_and_of_earlier_picks() -> None:
    vectors = np.stack([unit(1, 0, 0), unit(1, 0.01, 0), unit(0.9, 0.1, 0), unit(0, 1, 0)])
    source = unit(1, 0, 0)
    rows = np.array([0, 1, 2, 3])
    scores = np.array([0.99, 0.98, 0.9, 0.1], dtype=np.float32)
    picks = select(rows, scores, vectors, None, 3, near_duplicate=0.999)
    assert [row for row, _ in picks] == [0, 2, 3]  # row 1 is a copy of row 0
    with_source = select(rows, scores, vectors, source, 3, near_duplicate=0.999)
    assert [row for row, _ in with_source] == [2, 3]


def test_diversity_trades_score_for_variety() -> None:
    vectors = np.stack([unit(1, 0), unit(1, 0.5), unit(0, 1)])
    rows = np.array([0, 1, 2])
    scores = np.array([1.0, 0.95, 0.8], dtype=np.float32)
    plain = select(rows, scores, vectors, None, 2, diversity=0.0)
    diverse = select(rows, scores, vectors, None, 2, diversity=0.5)
    assert [r for r, _ in plain] == [0, 1]
    assert [r for r, _ in diverse] == [0, 2]
    assert diverse[1][1] == np.float32(0.8)  # reported scores are the candidates' own


def test_the_score_order_walk_matches_mmr_without_diversity() -> None:
    rng = np.random.default_rng(3)
    for trial in range(50):
        base = rng.normal(size=(1, 16))
        vectors = base + rng.normal(scale=0.15 + trial % 5 * 0.1, size=(60, 16))
        vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        rows = rng.permutation(60)[:40].astype(np.int64)
        scores = rng.random(40).astype(np.float32)
        source = vectors[int(rng.integers(60))]
        fast = select(rows, scores, vectors, source, 6, near_duplicate=0.97)
        mmr = select(rows, scores, vectors, source, 6, diversity=1e-9, near_duplicate=0.97)
        assert fast == mmr
