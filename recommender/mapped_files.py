"""Read-only memory maps of a version's files, so that every process serving one version shares
one copy of it in the page cache instead of each holding its own.

- `map_array`: a `.npy` file as a plain ndarray over a map of the file.
- `save_csr` / `load_csr`: a CSR matrix as `.npy` files (data, indices, indptr, shape), wrapped
  by scipy without a copy.
- `LineTable`: lines of a file (one JSON card, one term), found through an offsets array.
- `KeyIndex`: sorted 64-bit hashes of string keys with their rows, to find a key's row without
  a dict of every key (the caller confirms the row: two keys may share a hash).
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

#: The arrays of a CSR matrix, each in its own `.npy` file (as in scipy's `.npz`).
CSR_PARTS = ("data", "indices", "indptr", "shape")


def map_array(path: Path) -> NDArray[Any]:
    """A `.npy` file memory-mapped read-only, as a plain ndarray (same pages, without
    `np.memmap`'s overhead on every indexing)."""
    return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))


def map_bytes(path: Path) -> bytes | mmap.mmap:
    """A whole file memory-mapped read-only (an empty file, which cannot be mapped, as b"")."""
    with path.open("rb") as handle:
        if not path.stat().st_size:
            return b""
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def csr_files(stem: str) -> tuple[str, ...]:
    """The file names of a CSR matrix saved under `stem`."""
    return tuple(f"{stem}.{part}.npy" for part in CSR_PARTS)


def save_csr(matrix: sp.csr_matrix, directory: Path, stem: str) -> None:
    """Write a CSR matrix (sorted indices, no duplicates) as `csr_files(stem)`."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sum_duplicates()  # sorts the indices too: loaded matrices are flagged canonical
    arrays = (matrix.data, matrix.indices, matrix.indptr, np.array(matrix.shape, np.int64))
    for array, name in zip(arrays, csr_files(stem), strict=True):
        np.save(directory / name, array, allow_pickle=False)


def load_csr(directory: Path, stem: str) -> sp.csr_matrix:
    """A CSR matrix saved by `save_csr`, over memory maps of its files (no copy is made).
    Raises ValueError when they do not form one."""
    data, indices, indptr = (map_array(directory / name) for name in csr_files(stem)[:3])
    rows, columns = np.load(directory / csr_files(stem)[3], allow_pickle=False).tolist()
    if data.dtype != np.float32 or indices.shape != data.shape or indptr.shape != (rows + 1,):
        raise ValueError(f"{stem}: its arrays do not form a float32 CSR matrix")
    matrix = sp.csr_matrix((data, indices, indptr), shape=(rows, columns), copy=False)
    # Written canonical: without the flags scipy would scan every row, or sort the read-only
    # indices in place, before some operations.
    matrix.has_sorted_indices = True
    matrix.has_canonical_format = True
    return matrix


class LineTable:
    """Lines of a buffer (a memory-mapped file, or bytes), each found through `offsets`: line i
    is `buffer[offsets[i]:offsets[i + 1]]`, its newline included."""

    def __init__(self, buffer: bytes | mmap.mmap, offsets: NDArray[np.int64]) -> None:
        self._buffer = buffer
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def line(self, row: int) -> bytes:
        start, end = self._offsets[row : row + 2].tolist()
        return self._buffer[start:end]


def key_hash(key: str) -> int:
    """A stable 64-bit hash of a key (the same in every process and release)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


def key_hashes(keys: Iterable[str]) -> NDArray[np.uint64]:
    """`key_hash` of each key, in order."""
    return np.fromiter(map(key_hash, keys), dtype=np.uint64)


class KeyIndex:
    """Rows by key hash: `hashes` sorted ascending, `rows[i]` the row whose key has `hashes[i]`."""

    def __init__(self, hashes: NDArray[np.uint64], rows: NDArray[np.int64]) -> None:
        self.hashes = hashes
        self.rows = rows

    @classmethod
    def build(cls, hashes: NDArray[np.uint64]) -> KeyIndex:
        """The index of rows whose keys hash to `hashes` (by row)."""
        order = np.argsort(hashes, kind="stable").astype(np.int64)
        return cls(hashes[order], order)

    def candidates(self, key: str) -> list[int]:
        """The rows whose key may be `key` (almost always none or one)."""
        hashes = self.hashes
        digest = np.uint64(key_hash(key))  # a numpy scalar: a Python int would convert `hashes`
        start = end = int(hashes.searchsorted(digest))
        while end < len(hashes) and hashes[end] == digest:
            end += 1
        rows: list[int] = self.rows[start:end].tolist()
        return rows
