"""FAISS indexes over L2-normalised vectors (inner product = cosine). The only faiss importer.

Small catalogs get an exact `IndexFlatIP`; large ones an approximate index, an HNSW graph or an
IVF (inverted lists over k-means cells), whose recall@10 against exact search is measured at build
time and recorded in the version's manifest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from numpy.typing import NDArray

from index.index_errors import CorruptVersionError
from recommender.settings import AnnIndex, IndexSettings

Vectors = NDArray[np.float32]
Ids = NDArray[np.int64]

#: The fields of `IndexSpec` that apply to each kind of index.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "flat": (),
    "hnsw": ("hnsw_m", "ef_construction", "ef_search"),
    "ivf": ("ivf_lists", "ivf_probe"),
}


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """How an index is built; recorded in the manifest."""

    kind: Literal["flat", "hnsw", "ivf"]
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    ivf_lists: int | None = None
    """Inverted lists (k-means cells); None: chosen from the vector count at build."""
    ivf_probe: int = 16
    """Lists visited per query (nprobe)."""

    def to_dict(self) -> dict[str, Any]:
        """The kind and its own fields (a flat index records no HNSW settings)."""
        return {"kind": self.kind} | {name: getattr(self, name) for name in KIND_FIELDS[self.kind]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        """Missing fields take their defaults (manifests from before a field existed)."""
        return cls(**data)

    @property
    def search_breadth(self) -> int:
        """efSearch of HNSW, nprobe of IVF; 0 for exact search, which has none."""
        return {"hnsw": self.ef_search, "ivf": self.ivf_probe}.get(self.kind, 0)

    def describe(self) -> str:
        """One line for people: the kind and its parameters."""
        if self.kind == "hnsw":
            return (
                f"HNSW (approximate): M {self.hnsw_m}, efConstruction {self.ef_construction}, "
                f"efSearch {self.ef_search}"
            )
        if self.kind == "ivf":
            lists = "from the count" if self.ivf_lists is None else f"{self.ivf_lists:,}"
            return f"IVF (approximate): nlist {lists}, nprobe {self.ivf_probe}"
        return "flat (exact)"


#: Zero-copy memory map of the stored vectors, for every kind of index: a load reads only the
#: graph or the IVF's centroids (1.4 MB of a 155 MB IVF of 100,000 vectors), and processes
#: serving one version share its pages. (IO_FLAG_MMAP alone reads every byte into private
#: memory; measured in docs/scaling.md.) Older faiss builds lack the flag.
MMAP_FLAGS: int = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
#: Approximate indexes must find at least this share of the exact top 10.
RECALL_TARGET = 0.98
MAX_EF_SEARCH = 2048
#: IVF lists per square root of the vector count when not given (4000 lists at 1 M vectors).
IVF_LISTS_PER_ROOT = 4
#: k-means training rows per IVF list (at most; a random sample of the vectors).
IVF_TRAIN_PER_LIST = 64
#: Fewest training rows per list that faiss's k-means accepts without a warning.
IVF_MIN_TRAIN_PER_LIST = 39


def choose_spec(
    count: int,
    exact_search_max: int,
    ann_index: AnnIndex = "hnsw",
    ef_construction: int | None = None,
) -> IndexSpec:
    """Exact search while the catalog is small enough to scan; `ann_index` beyond (HNSW with
    `ef_construction`, None: the spec's default)."""
    if count <= exact_search_max:
        return IndexSpec("flat")
    spec = IndexSpec(ann_index)
    return spec if ef_construction is None else replace(spec, ef_construction=ef_construction)


def ivf_lists_for(count: int, requested: int | None = None) -> int:
    """IVF lists for `count` vectors: `requested` (default about 4 √count), at least 1, and no
    more than the training sample can fill."""
    wanted = requested if requested is not None else round(IVF_LISTS_PER_ROOT * math.sqrt(count))
    return max(1, min(wanted, count // IVF_MIN_TRAIN_PER_LIST))


def ivf_training_sample(vectors: Vectors, lists: int) -> Vectors:
    """A fixed random sample of at most `IVF_TRAIN_PER_LIST` rows per list, in row order."""
    size = min(len(vectors), IVF_TRAIN_PER_LIST * lists)
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), size=size, replace=False))
    return vectors[rows]


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
        """Index `vectors`; the returned index's spec records what was built (an IVF's lists)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dimension = vectors.shape[1]
        index: Any
        if spec.kind == "flat":
            index = faiss.IndexFlatIP(dimension)
        elif spec.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dimension, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = spec.ef_construction
        else:
            lists = ivf_lists_for(len(vectors), spec.ivf_lists)
            spec = replace(spec, ivf_lists=lists, ivf_probe=min(spec.ivf_probe, lists))
            index = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT
            )
            index.train(ivf_training_sample(vectors, lists))
        if len(vectors):
            index.add(vectors)
        built = cls(index, spec)
        built.set_search_breadth(spec.search_breadth)
        return built

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as faiss serialises it, a numpy byte array (what Ray's object store holds once
        for every worker of a node, `index.versions.ray_blocks`)."""
        return (_deserialised, (faiss.serialize_index(self._index), self.spec))

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
        loaded.set_search_breadth(spec.search_breadth)
        return loaded

    def set_search_breadth(self, breadth: int) -> None:
        """How widely an approximate index searches (larger: slower and more exact): efSearch of
        HNSW, nprobe of IVF. Exact search has no breadth and ignores it."""
        inner: Any = faiss.downcast_index(self._index)  # a view: self._index keeps ownership
        if self.spec.kind == "hnsw":
            self.spec = replace(self.spec, ef_search=breadth)
            inner.hnsw.efSearch = breadth
        elif self.spec.kind == "ivf":
            self.spec = replace(self.spec, ivf_probe=breadth)
            inner.nprobe = breadth

    @property
    def max_search_breadth(self) -> int:
        """The breadth beyond which searching wider finds nothing more (or costs too much)."""
        if self.spec.kind == "ivf":
            ivf: Any = faiss.downcast_index(self._index)
            return int(ivf.nlist)
        return MAX_EF_SEARCH if self.spec.kind == "hnsw" else 0

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


def _deserialised(data: NDArray[np.uint8], spec: IndexSpec) -> VectorIndex:
    """A pickled `VectorIndex` back (`VectorIndex.__reduce__`)."""
    index = VectorIndex(faiss.deserialize_index(data), spec)
    index.set_search_breadth(spec.search_breadth)
    return index


def tune_recall(index: VectorIndex, vectors: Vectors, target: float = RECALL_TARGET) -> float:
    """Double an approximate index's search breadth (HNSW efSearch, IVF nprobe) until recall@10
    against exact search reaches `target`, or the breadth its maximum.

    Returns the recall reached (recorded in the manifest with the breadth chosen).
    """
    recall = recall_at_k(index, vectors)
    while recall < target and index.spec.search_breadth < index.max_search_breadth:
        index.set_search_breadth(min(index.spec.search_breadth * 2, index.max_search_breadth))
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


def build_tuned(vectors: Vectors, settings: IndexSettings) -> tuple[VectorIndex, float]:
    """The index of a version's vectors, of the kind `settings` choose for their number, tuned
    (`tune_recall`); and its recall@10."""
    spec = choose_spec(
        len(vectors), settings.exact_search_max, settings.ann_index, settings.hnsw_ef_construction
    )
    index = VectorIndex.build(vectors, spec)
    return index, tune_recall(index, vectors)
