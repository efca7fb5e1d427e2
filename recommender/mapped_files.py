"""Read-only memory maps of a version's files, so that every process serving one version shares
one copy of it in the page cache instead of each holding its own.

- `map_array`: a `.npy` file as a plain ndarray over a map of the file.
- `save_csr` / `load_csr`: a CSR matrix as `.npy` files (data, indices, indptr, shape), wrapped
  by scipy without a copy; `save_csr_values` / `load_csr_values`: only the values of one whose
  rows hold the same columns as another's.
- `LineTable`: lines of a file (one JSON card, one term), found through an offsets array.
- `KeyIndex`: sorted 64-bit hashes of string keys with their rows, to find a key's row without
  a dict of every key (the caller confirms the row: two keys may share a hash).
"""

from __future__ import annotations

import bisect
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
    if indices.shape != data.shape or indptr.shape != (rows + 1,):
        raise ValueError(f"{stem}: its arrays do not form a CSR matrix")
    return _wrapped(data, indices, indptr, (rows, columns), stem)


def save_csr_values(matrix: sp.csr_matrix, directory: Path, stem: str, like: sp.csr_matrix) -> None:
    """Write only the values of a matrix whose rows hold the same columns as `like`'s, as
    `{stem}.data.npy` (its indices and indptr would be copies of `like`'s)."""
    if not (
        np.array_equal(matrix.indptr, like.indptr) and np.array_equal(matrix.indices, like.indices)
    ):
        raise ValueError(f"{stem}: its rows do not hold the columns of the matrix it is saved with")
    np.save(directory / csr_files(stem)[0], np.asarray(matrix.data, np.float32), allow_pickle=False)


def load_csr_values(directory: Path, stem: str, like: sp.csr_matrix) -> sp.csr_matrix:
    """A matrix saved by `save_csr_values`, over a memory map of its values and `like`'s
    indices and indptr. Raises ValueError when they do not fit."""
    data = map_array(directory / csr_files(stem)[0])
    if data.shape != like.indices.shape:
        raise ValueError(f"{stem}: {len(data)} values for {len(like.indices)} entries")
    return _wrapped(data, like.indices, like.indptr, like.shape, stem)


def _wrapped(
    data: NDArray[Any],
    indices: NDArray[Any],
    indptr: NDArray[Any],
    shape: tuple[int, int],
    stem: str,
) -> sp.csr_matrix:
    if data.dtype != np.float32:
        raise ValueError(f"{stem}: its values are {data.dtype}, not float32")
    matrix = sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)
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
        self._count = len(offsets) - 1

    def __len__(self) -> int:
        return self._count

    def line(self, row: int) -> bytes:
        """Line `row` (0 <= row < len: not checked, this is the serving path's inner loop)."""
        offsets = self._offsets
        return self._buffer[offsets.item(row) : offsets.item(row + 1)]


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
        # Python ints by index, without numpy's per-call overhead (a lookup is in every request).
        self._hashes = hashes.data
        self._rows = rows.data

    @classmethod
    def build(cls, hashes: NDArray[np.uint64]) -> KeyIndex:
        """The index of rows whose keys hash to `hashes` (by row)."""
        order = np.argsort(hashes, kind="stable").astype(np.int64)
        return cls(hashes[order], order)

    def candidates(self, key: str) -> list[int]:
        """The rows whose key may be `key` (almost always none or one)."""
        hashes, digest = self._hashes, key_hash(key)
        start = end = bisect.bisect_left(hashes, digest)
        while end < len(hashes) and hashes[end] == digest:
            end += 1
        return [self._rows[at] for at in range(start, end)]
