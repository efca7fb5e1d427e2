"""FAISS indexes over L2-normalised vectors (inner product = cosine). The only faiss importer.

Small catalogs get an exact `IndexFlatIP`; large ones an HNSW graph whose recall@10 against
exact search is measured at build time and recorded in the version's manifest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from numpy.typing import NDArray

from index.index_errors import CorruptVersionError

Vectors = NDArray[np.float32]
Ids = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """How an index is built; recorded in the manifest."""

    kind: Literal["flat", "hnsw"]
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        return cls(**data)


#: Zero-copy memory map of the stored vectors, for flat and HNSW indexes alike: a load reads only
#: the graph, and processes serving one version share its pages. (IO_FLAG_MMAP alone reads every
#: byte into private memory; measured in docs/scaling.md.) Older faiss builds lack the flag.
MMAP_FLAGS: int = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)


def choose_spec(count: int, exact_search_max: int) -> IndexSpec:
    """Exact search while the catalog is small enough to scan; HNSW beyond."""
    return IndexSpec("flat") if count <= exact_search_max else IndexSpec("hnsw")


def set_threads(threads: int) -> None:
    """FAISS OpenMP threads for this process (1 is fastest for single queries here)."""
    faiss.omp_set_num_threads(max(1, threads))


class VectorIndex:
    """A FAISS index whose row numbers are the catalog's row numbers."""

    def __init__(self, index: Any, spec: IndexSpec) -> None:
        self._index = index
        self.spec = spec

    @classmethod
    def build(cls, vectors: Vectors, spec: IndexSpec) -> VectorIndex:
        dimension = vectors.shape[1]
        index: Any
        if spec.kind == "flat":
            index = faiss.IndexFlatIP(dimension)
        else:
            index = faiss.IndexHNSWFlat(dimension, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = spec.ef_construction
            index.hnsw.efSearch = spec.ef_search
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, spec)

    @classmethod
    def load(cls, path: Path, spec: IndexSpec) -> VectorIndex:
        try:
            index = faiss.read_index(str(path), MMAP_FLAGS)
        except RuntimeError:
            try:
                index = faiss.read_index(str(path))
            except RuntimeError as exc:
                raise CorruptVersionError(f"cannot read FAISS index {path}: {exc}") from exc
        loaded = cls(index, spec)
        if spec.kind == "hnsw":
            loaded.set_ef_search(spec.ef_search)
        return loaded

    def set_ef_search(self, ef_search: int) -> None:
        """Search breadth of an HNSW index (larger: slower and more exact)."""
        self.spec = replace(self.spec, ef_search=ef_search)
        hnsw: Any = faiss.downcast_index(self._index)
        hnsw.hnsw.efSearch = ef_search

    def save(self, path: Path) -> None:
        try:
            faiss.write_index(self._index, str(path))
        except RuntimeError as exc:  # faiss reports a failed write (a full disk) this way
            detail = str(exc).rsplit("failed: ", 1)[-1]  # drop faiss's C++ source location
            raise OSError(detail if str(path) in detail else f"{path}: {detail}") from exc

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def search(self, queries: Vectors, k: int) -> tuple[Vectors, Ids]:
        """Top-k rows per query, best first; missing slots have id -1."""
        k = max(1, min(k, self.size)) if self.size else 1
        scores, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def search_batches(
        self, queries: Vectors, k: int, batch: int = 2048
    ) -> Iterator[tuple[int, Vectors, Ids]]:
        """Search many queries in batches, yielding (first row, scores, ids) per batch."""
        for start in range(0, len(queries), batch):
            scores, ids = self.search(queries[start : start + batch], k)
            yield start, scores, ids


#: Approximate indexes must find at least this share of the exact top 10.
RECALL_TARGET = 0.98
MAX_EF_SEARCH = 2048


def tune_recall(index: VectorIndex, vectors: Vectors, target: float = RECALL_TARGET) -> float:
    """Raise an HNSW index's efSearch until recall@10 against exact search reaches `target`.

    Returns the recall reached (recorded in the manifest with the efSearch chosen).
    """
    recall = recall_at_k(index, vectors)
    while recall < target and index.spec.kind == "hnsw" and index.spec.ef_search < MAX_EF_SEARCH:
        index.set_ef_search(index.spec.ef_search * 2)
        recall = recall_at_k(index, vectors)
    return recall


def recall_at_k(index: VectorIndex, vectors: Vectors, k: int = 10, sample: int = 1000) -> float:
    """Share of the exact top-k that `index` also returns, over a fixed sample of rows."""
    if index.spec.kind == "flat" or len(vectors) == 0:
        return 1.0
    rng = np.random.default_rng(0)
    rows = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    queries = vectors[rows]
    exact = VectorIndex.build(vectors, IndexSpec("flat"))
    _, truth = exact.search(queries, k)
    _, found = index.search(queries, k)
    hits = sum(len(set(t.tolist()) & set(f.tolist())) for t, f in zip(truth, found, strict=True))
    return hits / float(truth.size)
