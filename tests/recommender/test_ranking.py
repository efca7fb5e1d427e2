"""Pure ranking steps: filters, embargo, freshness, MMR and near-duplicate collapse."""

from __future__ import annotations

import numpy as np

from recommender.ranking import (
    SECONDS_PER_DAY,
    CandidateFacts,
    LabelColumn,
    RelatedQuery,
    eligible,
    freshness_penalty,
    select,
)

NOW = 1_700_000_000.0


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def facts() -> CandidateFacts:
    return CandidateFacts(
        sections=LabelColumn.of(["world", "sport", "world", None]),
        languages=LabelColumn.of(["en", "en", "de", None]),
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
