"""The deterministic fake encoder (`RECOMMENDER_MODEL=fake-hashing`): tests and demos know right
answers by construction without loading a model."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence

import numpy as np

from recommender.encoding.encoder_protocol import FAKE_MODEL, Vectors, normalise_rows

_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    """A deterministic fake: signed feature hashing of words and word pairs.

    Texts that share words get similar vectors, so tests can know right answers by construction
    without loading a model.
    """

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension

    @property
    def model_id(self) -> str:
        return f"{FAKE_MODEL}/{self._dimension}"

    @property
    def batch_size(self) -> int:
        return 64

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            for feature in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value & 1 else -1.0
                out[row, (value >> 1) % self._dimension] += sign
        return normalise_rows(out)
