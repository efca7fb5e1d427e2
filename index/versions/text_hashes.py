"""`text_hashes.npy` of a version: the hashes of the texts it was built from, so that
`recommender gc` knows which cache entries a kept version can still use.

uint8 (count, 2, 32): row i = article i's embedding-text hash (the embedding cache's key), then
its lexical-text hash (the term-count cache's key), as raw SHA-256 digests. Written in the
staging directory and checksummed in the manifest like every other file; versions written
before it existed have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from index.versions.manifest import Manifest, file_sha256

TEXT_HASHES = "text_hashes.npy"
_DIGEST = 32


@dataclass(frozen=True, slots=True)
class UsedTexts:
    """The hex hashes of the texts one version was built from."""

    embedding: set[str]
    lexical: set[str]


def write_text_hashes(
    directory: Path, embedding_hashes: Sequence[str], lexical_hashes: Sequence[str]
) -> str:
    """Record the articles' text hashes (hex, in catalog order) in `directory`; returns the
    file's name, for the manifest."""
    digests = bytearray()
    for embedded, lexical in zip(embedding_hashes, lexical_hashes, strict=True):
        digests += bytes.fromhex(embedded) + bytes.fromhex(lexical)
    table = np.frombuffer(bytes(digests), dtype=np.uint8).reshape(len(embedding_hashes), 2, _DIGEST)
    np.save(directory / TEXT_HASHES, table, allow_pickle=False)
    return TEXT_HASHES


def read_text_table(directory: Path, manifest: Manifest) -> NDArray[np.uint8] | None:
    """The table of the version in `directory` (by row: the two raw digests); None when it
    recorded none, or when its file fails its checksum."""
    entry = manifest.files.get(TEXT_HASHES)
    path = directory / TEXT_HASHES
    if entry is None or not path.is_file() or file_sha256(path) != entry.sha256:
        return None
    table: NDArray[np.uint8] = np.load(path, allow_pickle=False)
    return table


def read_text_hashes(directory: Path, manifest: Manifest) -> UsedTexts | None:
    """What the version in `directory` was built from (`read_text_table`, as hex sets)."""
    table = read_text_table(directory, manifest)
    if table is None:
        return None
    return UsedTexts(_hex_rows(table[:, 0]), _hex_rows(table[:, 1]))


def _hex_rows(digests: NDArray[np.uint8]) -> set[str]:
    text = np.ascontiguousarray(digests).tobytes().hex()
    width = 2 * _DIGEST
    return {text[start : start + width] for start in range(0, len(text), width)}
