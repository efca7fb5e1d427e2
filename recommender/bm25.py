"""Okapi BM25 of one article's whole text against others: a lexical baseline with document-length
normalisation (the `bm25` strategy of `recommender evaluate`).

The query is the set of the source's distinct terms (the analysis of the served TF-IDF: English
stop words dropped); a candidate scores `sum idf(t) * tf (k1 + 1) / (tf + k1 (1 - b + b dl /
avgdl))` over the query terms it holds, with idf `ln(1 + (n - df + 0.5) / (df + 0.5))` (Lucene's).
Both sides are sparse matrices, so the scores of a block of sources are one product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommender.tfidf import term_counts

K1 = 1.2
B = 0.75


@dataclass(frozen=True, slots=True)
class Bm25Matrices:
    """`queries[s] @ documents[c].T` is the BM25 score of candidate c for source s."""

    queries: sp.csr_matrix
    """One row per text: 1 for each distinct term."""
    documents: sp.csr_matrix
    """One row per text: each term's BM25 weight in that text."""

    @classmethod
    def fit(cls, texts: Sequence[str], k1: float = K1, b: float = B) -> Bm25Matrices:
        counts = [term_counts(text) for text in texts]
        vocabulary: dict[str, int] = {}
        indptr, indices, frequencies = [0], [], []
        for terms in counts:
            for term, count in terms.items():
                indices.append(vocabulary.setdefault(term, len(vocabulary)))
                frequencies.append(count)
            indptr.append(len(indices))
        shape = (len(texts), len(vocabulary))
        tf = sp.csr_matrix(
            (np.asarray(frequencies, dtype=np.float64), indices, indptr), shape=shape
        )
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        average = lengths.mean() if lengths.any() else 1.0
        document_frequency = np.bincount(tf.indices, minlength=shape[1])
        idf = np.log1p((len(texts) - document_frequency + 0.5) / (document_frequency + 0.5))
        norm = np.repeat(k1 * (1 - b + b * lengths / average), np.diff(tf.indptr))
        weights = idf[tf.indices] * tf.data * (k1 + 1) / (tf.data + norm)
        documents = sp.csr_matrix((weights.astype(np.float32), tf.indices, tf.indptr), shape=shape)
        queries = sp.csr_matrix(
            (np.ones(len(tf.indices), dtype=np.float32), tf.indices, tf.indptr), shape=shape
        )
        return cls(queries, documents)
