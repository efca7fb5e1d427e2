"""FAISS wrapper: exact and HNSW search, recall tuning, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.index_errors import CorruptVersionError
from index.versions.vector_index import (
    IndexSpec,
    VectorIndex,
    choose_spec,
    recall_at_k,
    tune_recall,
)
from recommender.embedding import normalise_rows


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(40, 32))
    points = centres[rng.integers(0, 40, 3000)] + 0.6 * rng.normal(size=(3000, 32))
    return normalise_rows(points)


def test_the_index_kind_follows_catalog_size() -> None:
    assert choose_spec(100, exact_search_max=1000).kind == "flat"
    assert choose_spec(1001, exact_search_max=1000).kind == "hnsw"


def test_exact_search_finds_each_vector_first(vectors: np.ndarray) -> None:
    index = VectorIndex.build(vectors, IndexSpec("flat"))
    scores, ids = index.search(vectors[:10], 3)
    assert ids[:, 0].tolist() == list(range(10))
    assert np.all(scores[:, 0] >= scores[:, 1])


def test_recall_tuning_raises_ef_search_until_the_target(vectors: np.ndarray) -> None:
    index = VectorIndex.build(
        vectors, IndexSpec("hnsw", hnsw_m=16, ef_construction=40, ef_search=1)
    )
    assert recall_at_k(index, vectors) < 0.98
    reached = tune_recall(index, vectors)
    assert reached >= 0.98 and index.spec.ef_search > 1


def test_save_and_load_keep_results_and_ef_search(vectors: np.ndarray, tmp_path: Path) -> None:
    index = VectorIndex.build(vectors, IndexSpec("hnsw", ef_search=96))
    index.save(tmp_path / "index.faiss")
    loaded = VectorIndex.load(tmp_path / "index.faiss", index.spec)
    assert loaded.spec.ef_search == 96 and loaded.size == len(vectors)
    assert np.array_equal(loaded.search(vectors[:5], 5)[1], index.search(vectors[:5], 5)[1])


def test_an_unreadable_index_file_is_a_corrupt_version(tmp_path: Path) -> None:
    (tmp_path / "index.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(CorruptVersionError, match="cannot read FAISS index"):
        VectorIndex.load(tmp_path / "index.faiss", IndexSpec("flat"))
