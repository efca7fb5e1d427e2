"""A durable cache of embeddings keyed by (model id, hash of the embedded text).

Every committed batch survives a crash (`index.state.hashed_blobs`), so an interrupted reindex
resumes where it stopped and an unchanged article is never embedded twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from index.state.hashed_blobs import HashedBlobs, PruneResult


class EmbeddingCache:
    """Vectors by (model id, text hash). Not shared across threads."""

    def __init__(self, path: Path) -> None:
        self._blobs = HashedBlobs(path, "the embedding cache", "embeddings", "model_id", "vector")

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        """The cached vectors among `hashes` (missing ones are absent from the result)."""
        return {
            text_hash: np.frombuffer(blob, dtype=np.float32)
            for text_hash, blob in self._blobs.get_many(model_id, hashes).items()
        }

    def known(self, model_id: str, hashes: Sequence[str]) -> set[str]:
        """Those of `hashes` that have a vector (read without the vectors)."""
        return self._blobs.known(model_id, hashes)

    def put_many(self, model_id: str, items: Iterable[tuple[str, NDArray[np.float32]]]) -> None:
        """Store vectors and commit, so they survive an interruption right after.

        Raises StorageError when the write fails (a full disk); earlier batches stay stored.
        """
        self._blobs.put_many(
            model_id,
            (
                (text_hash, np.asarray(vector, dtype=np.float32).tobytes())
                for text_hash, vector in items
            ),
        )

    def prune(self, keep: Mapping[str, set[str]], *, dry_run: bool = False) -> PruneResult:
        """Keep only the vectors of `keep` (model id -> text hashes); other models' all go."""
        return self._blobs.prune(keep, dry_run=dry_run)

    def close(self) -> None:
        self._blobs.close()
