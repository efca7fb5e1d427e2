"""Local scaling in a version: each article's mean and spread measured over its own candidate
pool at reindex, stored and checksummed, and the stored lists ranked by the rescaled score;
live articles count as a typical article."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.index_errors import CorruptVersionError
from index.serving.version_loader import load_current, load_recommender
from index.versions.neighbours import ScoredPools, candidate_batches, rank_by_fusion
from index.versions.version_store import VersionStore
from recommender.signals.base import Candidates, Side
from recommender.signals.local_scaling import NAME, STATISTICS, LocalScaling
from recommender.signals.registry import pair_scores
from tests.support.helpers import build_fake_index, synthetic_records

NEIGHBOURS = 8
WEIGHT = 0.5


def test_a_version_stores_each_pools_mean_and_spread_and_ranks_by_the_rescaled_score(
    tmp_path: Path,
) -> None:
    settings, _ = build_fake_index(
        tmp_path / "data",
        synthetic_records(per_topic=6),
        neighbours=NEIGHBOURS,
        local_scaling=WEIGHT,
    )
    version, _ = load_current(settings.index)
    assert version.weights[NAME] == WEIGHT
    part = version.signals[NAME]
    before = {name: version.signals[name] for name in ("lexical", "bm25", "semantic", "time")}
    side = Side(version.vectors, version.published, version.side.features)
    rows = np.arange(version.size, dtype=np.int64)
    [(found, ids, cosines)] = candidate_batches(
        version.index, version.vectors, rows, NEIGHBOURS, batch=version.size
    )
    candidates = Candidates(side, ids, cosines)
    raw = pair_scores(before, side, found, candidates, version.weights)
    valid = ids >= 0
    assert valid.all()  # 36 articles: every pool of 16 is full
    assert np.allclose(part.statistics[:, 0], raw.mean(axis=1), atol=1e-5)
    assert np.allclose(part.statistics[:, 1], raw.std(axis=1), atol=1e-5)
    assert part.typical_spread == pytest.approx(float(np.median(raw.std(axis=1))), abs=1e-6)
    # The stored lists: the pools rescaled and ranked, not the raw scores ranked.
    rescaled = LocalScaling().rescale(part, raw, candidates, version.weights)
    expected_ids, expected_scores = rank_by_fusion(ids, rescaled, NEIGHBOURS)
    assert np.array_equal(version.neighbour_ids, expected_ids)
    assert np.allclose(version.neighbour_scores, expected_scores, atol=1e-5)
    raw_ids, _ = rank_by_fusion(ids, raw.copy(), NEIGHBOURS)
    assert not np.array_equal(raw_ids, expected_ids)  # it moved something
    # Explained to editors with the suggestion's usual score.
    recommender, _ = load_recommender(settings.index)
    why = recommender.explain(0, int(version.neighbour_ids[0, 0]))
    target = int(version.neighbour_ids[0, 0])
    assert why["usual_score"] == round(float(part.statistics[target, 0]), 4)
    # Checksummed like every file of a version.
    path = VersionStore(settings.data_dir).current_path()
    np.save(path / STATISTICS, np.asarray(part.statistics) + 1, allow_pickle=False)
    with pytest.raises(CorruptVersionError, match=STATISTICS):
        VersionStore(settings.data_dir).verified(version.id)


def test_turned_off_a_version_ranks_by_the_plain_hybrid_score(tmp_path: Path) -> None:
    records = synthetic_records(per_topic=6)
    on, _ = build_fake_index(tmp_path / "on", records, neighbours=NEIGHBOURS, local_scaling=WEIGHT)
    off, _ = build_fake_index(tmp_path / "off", records, neighbours=NEIGHBOURS, local_scaling=0)
    scaled, plain = load_current(on.index)[0], load_current(off.index)[0]
    side = Side(plain.vectors, plain.published, plain.side.features)
    rows = np.arange(plain.size, dtype=np.int64)
    [(found, ids, cosines)] = candidate_batches(
        plain.index, plain.vectors, rows, NEIGHBOURS, batch=plain.size
    )
    raw = pair_scores(plain.signals, side, found, Candidates(side, ids, cosines), plain.weights)
    raw_ids, raw_scores = rank_by_fusion(ids, raw, NEIGHBOURS)
    assert np.array_equal(plain.neighbour_ids, raw_ids)
    assert np.allclose(plain.neighbour_scores, raw_scores, atol=1e-6)
    assert not np.array_equal(scaled.neighbour_ids, plain.neighbour_ids)


def test_the_fits_scored_pools_come_back_by_block_whatever_order_they_were_put_in(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(7)
    count, pool = 10, 4
    ids = rng.integers(-1, count, size=(count, pool))
    cosines = rng.random((count, pool), dtype=np.float32)
    scores = rng.random((count, pool), dtype=np.float32)
    order = np.array([6, 7, 8, 0, 1, 9, 2, 3, 4, 5])  # runs of rows, and single rows
    with ScoredPools(count, tmp_path) as kept:
        kept.put(order[:5], ids[order[:5]], cosines[order[:5]], scores[order[:5]])
        assert not kept.complete
        kept.put(order[:5], ids[order[:5]], cosines[order[:5]], scores[order[:5]])
        assert not kept.complete  # rows put twice are not the rows never put
        kept.put(order[5:], ids[order[5:]], cosines[order[5:]], scores[order[5:]])
        assert kept.complete
        for start, stop in [(0, 3), (3, 10), (9, 10)]:
            got_ids, got_cosines, got_scores = kept.block(start, stop)
            np.testing.assert_array_equal(got_ids, ids[start:stop])
            np.testing.assert_array_equal(got_cosines, cosines[start:stop])
            np.testing.assert_array_equal(got_scores, scores[start:stop])
    assert list(tmp_path.iterdir()) == []  # an unlinked file: nothing left, even after a kill
