"""Okapi BM25 over the served TF-IDF vocabulary: the second lexical signal of the hybrid ranker,
and the `bm25` baseline of `recommender evaluate`.

A candidate c scores `sum idf(t) * tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))` over the
distinct terms t of the source s, with idf `ln(1 + (n - df + 0.5) / (df + 0.5))` (Lucene's): the
rows of the `documents` matrix hold each term's weight in its text, so a score is a sum of the
candidate's row over the source's terms.

The ranker uses the score **as a share of the source's own**: bm25(s, c) / bm25(s, s), 0..~1,
comparable across sources of any length. Unlike the TF-IDF cosine it is asymmetric (how much
of the source the candidate covers) and normalises long candidates by their length only; on the
shared labelled sets the mean of the two signals generalises better than either (docs/quality.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.tfidf import ROW_BLOCK, TfidfModel, analyse

K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class Bm25Model:
    """BM25 statistics of one catalog, by column of its term-frequency matrix."""

    idf: NDArray[np.float32]
    average_length: float
    k1: float = K1
    b: float = B

    @classmethod
    def fit(
        cls, frequencies: sp.csr_matrix, block: int = ROW_BLOCK
    ) -> tuple[Bm25Model, sp.csr_matrix]:
        """Fit on a catalog's (texts, terms) raw term counts; returns the model and the
        catalog's document rows (weighed `block` texts at a time)."""
        lengths = np.asarray(frequencies.sum(axis=1)).ravel()
        average = float(lengths.mean()) if lengths.any() else 1.0
        document_frequency = np.bincount(frequencies.indices, minlength=frequencies.shape[1])
        model = cls(_idf(frequencies.shape[0], document_frequency), average)
        return model, model.documents(frequencies, block)

    def extended(self, frequencies: sp.csr_matrix, count: int) -> Bm25Model:
        """The model with the columns of `frequencies` (raw term counts of new texts) past its
        own appended, weighed by their document frequency in those texts among `count`; its
        own idf and average length are kept (an incremental reindex)."""
        known = len(self.idf)
        document_frequency = np.bincount(frequencies.indices, minlength=frequencies.shape[1])
        added = _idf(count, document_frequency[known:])
        return Bm25Model(np.concatenate([self.idf, added]), self.average_length, self.k1, self.b)

    @classmethod
    def empty(cls, terms: int) -> Bm25Model:
        """A model that weighs every term 0 (versions built before BM25 was a signal)."""
        return cls(np.zeros(terms, dtype=np.float32), 1.0)

    def documents(self, frequencies: sp.csr_matrix, block: int = ROW_BLOCK) -> sp.csr_matrix:
        """Document rows of texts given by their raw term counts over the same columns,
        weighed `block` texts at a time into the rows' own array."""
        texts, indptr = frequencies.shape[0], frequencies.indptr
        weights = np.empty(frequencies.nnz, dtype=np.float32)
        for first in range(0, texts, block):
            entries = slice(indptr[first], indptr[min(first + block, texts)])
            sizes = np.diff(indptr[first : first + block + 1])
            tf = frequencies.data[entries].astype(np.float64)
            lengths = np.bincount(np.repeat(np.arange(len(sizes)), sizes), tf, len(sizes))
            norm = np.repeat(self.k1 * (1 - self.b + self.b * lengths / self.average_length), sizes)
            idf = self.idf[frequencies.indices[entries]]
            weights[entries] = idf * tf * (self.k1 + 1) / (tf + norm)
        return sp.csr_matrix(
            (weights, frequencies.indices.copy(), indptr.copy()), shape=frequencies.shape
        )

    def save(self, path: Path) -> None:
        path.write_bytes(
            orjson.dumps(
                {
                    "idf": self.idf.tolist(),
                    "average_length": self.average_length,
                    "k1": self.k1,
                    "b": self.b,
                }
            )
        )

    @classmethod
    def load(cls, path: Path) -> Bm25Model:
        data = orjson.loads(path.read_bytes())
        return cls(
            np.asarray(data["idf"], dtype=np.float32), data["average_length"], data["k1"], data["b"]
        )


def _idf(count: int, document_frequency: NDArray[np.int64]) -> NDArray[np.float32]:
    """Lucene's BM25 idf of terms found in `document_frequency` of `count` texts."""
    idf = np.log1p((count - document_frequency + 0.5) / (document_frequency + 0.5))
    return idf.astype(np.float32)


def coverage_queries(documents: sp.csr_matrix) -> sp.csr_matrix:
    """Query rows for document rows: each of the text's terms weighs 1 / its own BM25 score,
    so that `query @ candidate document` is bm25(source, candidate) / bm25(source, source).

    A row without weight (no known term, or a model without BM25) scores 0 against everything.
    """
    own = np.asarray(documents.sum(axis=1), dtype=np.float64).ravel()
    inverse = np.divide(1.0, own, out=np.zeros_like(own), where=own > 0)
    values = np.repeat(inverse, np.diff(documents.indptr)).astype(np.float32)
    return sp.csr_matrix((values, documents.indices, documents.indptr), shape=documents.shape)


@dataclass(frozen=True, slots=True)
class Bm25Matrices:
    """`queries[s] @ documents[c].T` is the BM25 score of candidate c for source s."""

    queries: sp.csr_matrix
    """One row per text: 1 for each distinct term."""
    documents: sp.csr_matrix
    """One row per text: each term's BM25 weight in that text."""

    @classmethod
    def fit(cls, texts: Sequence[str]) -> Bm25Matrices:
        """Both matrices over the terms of `texts` (the analysis of the served TF-IDF)."""
        analysed = [analyse(text, names=False) for text in texts]
        _, _, frequencies = TfidfModel.fit_terms(analysed)
        _, documents = Bm25Model.fit(frequencies)
        queries = sp.csr_matrix(
            (np.ones(documents.nnz, dtype=np.float32), documents.indices, documents.indptr),
            shape=documents.shape,
        )
        return cls(queries, documents)
