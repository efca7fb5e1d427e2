"""TF-IDF vectors: the lexical signal of the hybrid ranker (names, places and numbers that an
embedding model blurs).

Weights are sublinear (`1 + ln tf`) times smoothed idf (`1 + ln((n + 1) / (df + 1))`), rows are
L2-normalised, so the dot product of two rows is their cosine. With a `name_boost`, a term that
is a proper noun or a number in its text (`recommender.proper_nouns`) weighs `1 + name_boost`
times as much there: the words that tell two look-alike events apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.proper_nouns import proper_noun_counts
from recommender.text_analysis import STOP_WORDS, Analyzer

ANALYZER = Analyzer(STOP_WORDS)
#: Words that weigh in the ranking but tell an editor nothing about why two stories are related:
#: left out of the shared terms shown as the reason (`Recommender.explain`), not of the index.
FILLER_WORDS: frozenset[str] = frozenset(
    """
    across added ago already amid back bad best better big called came come comes continue
    day days despite far first following found give given going good great including
    know last later latest least let like likely long look looking major many month months
    new news next old part people place put really recent recently report reported right
    saying see seen set several show since take taken tell three time times today told took
    top two use used want way week weeks went year years yesterday
    """.split()  # noqa: SIM905 - a word list reads better as text
)
MIN_TOKEN_LENGTH = 2
#: Sources scored together by `pair_similarities`.
_PAIR_BLOCK = 256


def term_counts(text: str) -> Counter[str]:
    """How often each term of `text` occurs (stop words and one-letter tokens dropped)."""
    return Counter(t for t in ANALYZER.tokens(text) if len(t) >= MIN_TOKEN_LENGTH)


@dataclass(frozen=True)
class TfidfModel:
    """A vocabulary with idf weights, fitted on one catalog."""

    vocabulary: dict[str, int]
    idf: NDArray[np.float32]
    name_boost: float = 0.0

    @classmethod
    def fit(cls, texts: Sequence[str], name_boost: float = 0.0) -> tuple[TfidfModel, sp.csr_matrix]:
        """Fit on `texts` and return the model with their (n, vocabulary) matrix."""
        counts = [term_counts(text) for text in texts]
        vocabulary: dict[str, int] = {}
        for terms in counts:
            for term in terms:
                vocabulary.setdefault(term, len(vocabulary))
        document_frequency = np.zeros(len(vocabulary), dtype=np.float64)
        for terms in counts:
            document_frequency[[vocabulary[t] for t in terms]] += 1
        idf = (1.0 + np.log((len(texts) + 1.0) / (document_frequency + 1.0))).astype(np.float32)
        model = cls(vocabulary, idf, name_boost)
        return model, model._matrix(texts, counts)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Rows for texts outside the fitted catalog (unknown terms are ignored)."""
        return self._matrix(texts, [term_counts(text) for text in texts])

    def _matrix(self, texts: Sequence[str], counts: Sequence[Counter[str]]) -> sp.csr_matrix:
        indptr = [0]
        indices: list[int] = []
        frequencies: list[int] = []
        boosts: list[float] = []
        vocabulary = self.vocabulary
        for text, terms in zip(texts, counts, strict=True):
            names = proper_noun_counts(text) if self.name_boost else {}
            for term, count in terms.items():
                column = vocabulary.get(term)
                if column is not None:
                    indices.append(column)
                    frequencies.append(count)
                    boosts.append(1.0 + self.name_boost if term in names else 1.0)
            indptr.append(len(indices))
        values = (1.0 + np.log(np.asarray(frequencies, dtype=np.float32))) * np.asarray(
            boosts, dtype=np.float32
        )
        matrix = sp.csr_matrix(
            (values.astype(np.float32), indices, indptr),
            shape=(len(counts), len(self.vocabulary)),
            dtype=np.float32,
        )
        matrix = matrix.multiply(self.idf[np.newaxis, :]).tocsr()
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ matrix, dtype=np.float32)

    def save(self, vocabulary_path: Path) -> None:
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        vocabulary_path.write_bytes(
            orjson.dumps({"terms": terms, "idf": self.idf.tolist(), "name_boost": self.name_boost})
        )

    @classmethod
    def load(cls, vocabulary_path: Path) -> TfidfModel:
        data = orjson.loads(vocabulary_path.read_bytes())
        return cls(
            {term: i for i, term in enumerate(data["terms"])},
            np.asarray(data["idf"], dtype=np.float32),
            data.get("name_boost", 0.0),  # versions built before the boost have none
        )


def pair_similarities(
    matrix: sp.csr_matrix, sources: NDArray[np.int64], candidates: NDArray[np.int64]
) -> NDArray[np.float32]:
    """Cosine of each source row with each of its candidate rows, shape candidates.shape.

    Candidate ids below 0 (padding) get 0.
    """
    out = np.zeros(candidates.shape, dtype=np.float32)
    width = candidates.shape[1] if candidates.ndim == 2 else 0
    # Blocks of sources: one sparse element-wise product per block instead of one per source.
    for start in range(0, len(sources), _PAIR_BLOCK):
        block = candidates[start : start + _PAIR_BLOCK]
        valid = block >= 0
        if not valid.any():
            continue
        rows = np.repeat(sources[start : start + _PAIR_BLOCK], width)[valid.ravel()]
        products = matrix[rows].multiply(matrix[block[valid]]).sum(axis=1)
        out[start : start + len(block)][valid] = np.asarray(products, dtype=np.float32).ravel()
    return out


def query_similarities(
    matrix: sp.csr_matrix, query: sp.csr_matrix, candidates: NDArray[np.int64]
) -> NDArray[np.float32]:
    """Cosine of one outside query row (e.g. a draft) with each candidate row."""
    valid = candidates >= 0
    out = np.zeros(candidates.shape, dtype=np.float32)
    if valid.any():
        out[valid] = (matrix[candidates[valid]] @ query.T).toarray().ravel()
    return out


def save_matrix(matrix: sp.csr_matrix, path: Path) -> None:
    sp.save_npz(path, matrix, compressed=False)


def load_matrix(path: Path) -> sp.csr_matrix:
    return sp.csr_matrix(sp.load_npz(path), dtype=np.float32)
