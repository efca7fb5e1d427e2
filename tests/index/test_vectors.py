"""FAISS wrapper: exact, HNSW and IVF search, recall tuning, save/load."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from index.index_errors import CorruptVersionError
from index.versions.vector_index import (
    IndexSpec,
    VectorIndex,
    choose_spec,
    ivf_lists_for,
    recall_at_k,
    tune_recall,
)
from recommender.encoding.encoder_protocol import normalise_rows


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(40, 32))
    points = centres[rng.integers(0, 40, 3000)] + 0.6 * rng.normal(size=(3000, 32))
    return normalise_rows(points)


def test_the_index_kind_follows_catalog_size_and_the_settings() -> None:
    assert choose_spec(100, exact_search_max=1000).kind == "flat"
    assert choose_spec(100, 1000, "ivf", ef_construction=40) == IndexSpec("flat")
    assert choose_spec(1001, exact_search_max=1000).kind == "hnsw"
    assert choose_spec(1001, 1000, "hnsw", ef_construction=40) == IndexSpec(
        "hnsw", ef_construction=40
    )
    assert choose_spec(1001, 1000, "ivf", ef_construction=40).kind == "ivf"


def test_ivf_lists_grow_with_the_root_of_the_count_within_what_training_can_fill() -> None:
    assert ivf_lists_for(1_000_000) == 4000
    assert ivf_lists_for(20_000) == 20_000 // 39  # 4 √20,000 = 566 lists would be underfed
    assert ivf_lists_for(10) == 1
    assert ivf_lists_for(100_000, requested=64) == 64
    assert ivf_lists_for(1000, requested=500) == 25


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


def test_an_ivf_index_records_what_it_built_and_tuning_raises_nprobe(vectors: np.ndarray) -> None:
    index = VectorIndex.build(vectors, IndexSpec("ivf", ivf_probe=1))
    assert index.spec.ivf_lists == ivf_lists_for(3000) == 76 and index.size == 3000
    assert recall_at_k(index, vectors) < 0.98
    reached = tune_recall(index, vectors)
    assert reached >= 0.98 and 1 < index.spec.ivf_probe < index.spec.ivf_lists
    assert reached == recall_at_k(index, vectors)


def test_ivf_nprobe_is_capped_at_its_lists(vectors: np.ndarray) -> None:
    index = VectorIndex.build(vectors[:400], IndexSpec("ivf", ivf_lists=4, ivf_probe=64))
    assert (index.spec.ivf_lists, index.spec.ivf_probe) == (4, 4)
    assert tune_recall(index, vectors[:400]) == 1.0  # every list visited: exact search


def test_ivf_save_and_load_keep_results_and_apply_the_recorded_nprobe(
    vectors: np.ndarray, tmp_path: Path
) -> None:
    index = VectorIndex.build(vectors, IndexSpec("ivf", ivf_probe=1))
    path = tmp_path / "index.faiss"
    index.save(path)
    narrow = VectorIndex.load(path, index.spec)
    assert narrow.spec == index.spec
    assert np.array_equal(narrow.search(vectors[:200], 10)[1], index.search(vectors[:200], 10)[1])
    # The manifest's nprobe, not the file's, is what the loaded index searches with.
    wide = VectorIndex.load(path, replace(index.spec, ivf_probe=8))
    index.set_search_breadth(8)
    assert wide.spec.ivf_probe == 8
    assert np.array_equal(wide.search(vectors[:200], 10)[1], index.search(vectors[:200], 10)[1])
    assert recall_at_k(wide, vectors) > recall_at_k(narrow, vectors)
    # Memory-mapped, as the API loads every kind: the file is mapped into this process.
    assert str(path) in Path("/proc/self/maps").read_text()


def test_a_manifest_from_before_ivf_still_loads() -> None:
    hnsw = {"kind": "hnsw", "hnsw_m": 16, "ef_construction": 64, "ef_search": 256}
    assert IndexSpec.from_dict(hnsw) == IndexSpec("hnsw", 16, 64, 256)
    assert IndexSpec.from_dict(hnsw).to_dict() == hnsw
    old_flat = {"kind": "flat", "hnsw_m": 32, "ef_construction": 200, "ef_search": 128}
    assert IndexSpec.from_dict(old_flat).to_dict() == {"kind": "flat"}
    ivf = IndexSpec("ivf", ivf_lists=100, ivf_probe=8)
    assert ivf.to_dict() == {"kind": "ivf", "ivf_lists": 100, "ivf_probe": 8}
    assert IndexSpec.from_dict(ivf.to_dict()) == ivf
    assert ivf.describe() == "IVF (approximate): nlist 100, nprobe 8"
