"""TF-IDF vectors: the lexical signal of the hybrid ranker (names, places and numbers that an
embedding model blurs).

Weights are sublinear (`1 + ln tf`) times smoothed idf (`1 + ln((n + 1) / (df + 1))`), rows are
L2-normalised, so the dot product of two rows is their cosine. With a `name_boost`, a term that
is a proper noun or a number in its text (`recommender.proper_nouns`) weighs `1 + name_boost`
times as much there: the words that tell two look-alike events apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path

import numpy as np
import orjson
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.mapped_files import csr_files, load_csr
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
#: `pair_similarities` scores a block as the product of its sources with all their candidates
#: while that holds at most this many times the pairs asked for, and pair by pair past it: a
#: pair costs ~50 times less in the product (2,000 news articles, 64 neighbours), so small
#: catalogs, whose candidate lists overlap, take the product and large ones do not pay for it.
_PRODUCT_EXCESS = 32
#: Pairs whose rows are gathered at once when scored pair by pair: both rows of each pair are
#: copied, ~300 terms each for a full text, so ~50 MB at a time rather than ~400 MB for a block
#: of sources with pools of 128 (the fit's peak memory, 10,000 full texts).
_PAIRS_AT_ONCE = 4096
#: Texts whose TF-IDF rows `TfidfModel` weighs at once (by default).
ROW_BLOCK = 65_536


def term_counts(text: str) -> Counter[str]:
    """How often each term of `text` occurs (stop words and one-letter tokens dropped)."""
    return Counter(t for t in ANALYZER.tokens(text) if len(t) >= MIN_TOKEN_LENGTH)


#: Names what `analyse` computes: a stored analysis is reused only under the same id, so change it
#: whenever `term_counts` or `proper_noun_counts` would count another text differently.
ANALYSIS_ID = "terms-1"


@dataclass(frozen=True, slots=True)
class TextTerms:
    """One text analysed for TF-IDF, independently of any catalog (so it can be stored)."""

    terms: Sequence[str]
    """Its distinct terms, in order of first occurrence."""
    counts: Sequence[int]
    """How often each of `terms` occurs."""
    names: Sequence[int] | None
    """Positions in `terms` of the proper nouns and numbers; None when they were not sought."""


def analyse(text: str, names: bool) -> TextTerms:
    """The terms of `text` with their counts; with `names`, which are proper nouns or numbers."""
    counts = term_counts(text)
    terms = list(counts)
    if not names:
        return TextTerms(terms, list(counts.values()), None)
    proper = proper_noun_counts(text)
    return TextTerms(
        terms, list(counts.values()), [at for at, term in enumerate(terms) if term in proper]
    )


@dataclass(frozen=True, slots=True)
class CatalogTerms:
    """Many texts analysed (`TextTerms`), held as flat arrays over one vocabulary: a few bytes
    per term occurrence instead of Python lists of strings (what a large catalog's fit reads).

    Text i's distinct terms are entries `indptr[i]:indptr[i + 1]`, in their order in the text."""

    vocabulary: dict[str, int]
    """Term -> column, numbered in order of first occurrence over the texts."""
    indptr: NDArray[np.int64]
    columns: NDArray[np.int32]
    counts: NDArray[np.float32]
    """How often each entry's term occurs in its text."""
    named: NDArray[np.bool_] | None
    """Which entries are proper nouns or numbers; None unless every text was analysed with
    its names."""

    @property
    def lengths(self) -> NDArray[np.int64]:
        """Distinct terms per text."""
        return np.diff(self.indptr)

    @classmethod
    def of(cls, analysed: Iterable[TextTerms]) -> CatalogTerms:
        """The arrays of `analysed`, in order."""
        builder = CatalogTermsBuilder()
        builder.add(analysed)
        return builder.build()


class CatalogTermsBuilder:
    """`CatalogTerms` built block by block, each block's Python lists dropped once added."""

    def __init__(self) -> None:
        self._vocabulary: dict[str, int] = {}
        self._lengths: list[NDArray[np.int64]] = []
        self._columns: list[NDArray[np.int32]] = []
        self._counts: list[NDArray[np.float32]] = []
        self._named: list[NDArray[np.bool_]] | None = []

    def add(self, analysed: Iterable[TextTerms]) -> None:
        """Append texts (a block of the catalog), in order."""
        block = list(analysed)
        terms = list(chain.from_iterable(text.terms for text in block))
        vocabulary = self._vocabulary
        # New terms are numbered as they first occur.
        new = [term for term in dict.fromkeys(terms) if term not in vocabulary]
        vocabulary.update(zip(new, range(len(vocabulary), len(vocabulary) + len(new)), strict=True))
        lengths = np.fromiter((len(text.terms) for text in block), np.int64, len(block))
        self._lengths.append(lengths)
        self._columns.append(
            np.fromiter(map(vocabulary.__getitem__, terms), np.int32, count=len(terms))
        )
        self._counts.append(
            np.fromiter(chain.from_iterable(text.counts for text in block), np.float32, len(terms))
        )
        if self._named is not None and any(text.names is None for text in block):
            self._named = None
        if self._named is not None:
            named = np.zeros(len(terms), np.bool_)
            starts = np.cumsum(lengths) - lengths
            for start, text in zip(starts.tolist(), block, strict=True):
                named[[start + at for at in text.names or ()]] = True
            self._named.append(named)

    def build(self) -> CatalogTerms:
        lengths = np.concatenate([np.zeros(1, np.int64), *self._lengths])
        return CatalogTerms(
            self._vocabulary,
            np.cumsum(lengths),
            np.concatenate([np.zeros(0, np.int32), *self._columns]),
            np.concatenate([np.zeros(0, np.float32), *self._counts]),
            None if self._named is None else np.concatenate([np.zeros(0, np.bool_), *self._named]),
        )


@dataclass(frozen=True)
class TfidfModel:
    """A vocabulary with idf weights, fitted on one catalog."""

    vocabulary: Mapping[str, int]
    idf: NDArray[np.float32]
    name_boost: float = 0.0

    @classmethod
    def fit(cls, texts: Sequence[str], name_boost: float = 0.0) -> tuple[TfidfModel, sp.csr_matrix]:
        """Fit on `texts` and return the model with their (n, vocabulary) matrix."""
        model, matrix, _ = cls.fit_terms(
            [analyse(text, bool(name_boost)) for text in texts], name_boost
        )
        return model, matrix

    @classmethod
    def fit_terms(
        cls, analysed: Sequence[TextTerms], name_boost: float = 0.0
    ) -> tuple[TfidfModel, sp.csr_matrix, sp.csr_matrix]:
        """`fit` on texts already analysed (with their names when `name_boost` is set); also
        returns their raw term counts over the vocabulary (what BM25 weighs)."""
        return cls.fit_catalog(CatalogTerms.of(analysed), name_boost)

    @classmethod
    def fit_catalog(
        cls, terms: CatalogTerms, name_boost: float = 0.0, block: int = ROW_BLOCK
    ) -> tuple[TfidfModel, sp.csr_matrix, sp.csr_matrix]:
        """`fit_terms` on a catalog's analyses held as arrays, weighing `block` texts at once."""
        # A text holds each of its terms once, so a column's count is its document frequency.
        document_frequency = np.bincount(terms.columns, minlength=len(terms.vocabulary))
        idf = smoothed_idf(len(terms.indptr) - 1, document_frequency)
        model = cls(terms.vocabulary, idf, name_boost)
        return model, *model._rows(terms.lengths, terms.columns, terms.counts, terms.named, block)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Rows for texts outside the fitted catalog (unknown terms are ignored)."""
        matrix, _ = self.transform_terms([analyse(text, bool(self.name_boost)) for text in texts])
        return matrix

    def transform_terms(self, analysed: Sequence[TextTerms]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """`transform` on texts already analysed; also returns their raw term counts."""
        terms = CatalogTerms.of(analysed)
        # Their own columns -> the fitted vocabulary's (-1 where it lacks the term).
        columns = np.fromiter(
            map(self.vocabulary.get, terms.vocabulary, repeat(-1)), np.int32, len(terms.vocabulary)
        )
        return self.weigh(terms, columns)

    def weigh(
        self, terms: CatalogTerms, columns: NDArray[np.int32], block: int = ROW_BLOCK
    ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """The TF-IDF rows and raw term counts of analysed texts, whose own columns are the
        model's `columns` (-1: left out)."""
        return self._rows(terms.lengths, columns[terms.columns], terms.counts, terms.named, block)

    def _rows(
        self,
        lengths: NDArray[np.int64],
        columns: NDArray[np.int32],
        counts: NDArray[np.float32],
        named: NDArray[np.bool_] | None,
        block: int = ROW_BLOCK,
    ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """The TF-IDF rows and raw term counts of texts with `lengths` distinct terms each, whose
        entries (all texts' in a row) have these `columns` (-1: not in the vocabulary, left
        out), `counts` and proper nouns (`named`).

        Weighed `block` texts at a time into the matrices' own arrays, so that the temporaries
        of one block at most are alive beside them."""
        if self.name_boost and named is None:
            raise ValueError("a name boost needs texts analysed with their names")
        known = columns >= 0
        kept = int(np.count_nonzero(known))
        data = np.empty(kept, np.float32)
        indices = np.empty(kept, np.int32)
        frequencies = np.empty(kept, np.float32)
        row_sizes = np.empty(len(lengths), np.int64)
        ends = np.cumsum(lengths)
        at = 0
        for first in range(0, len(lengths), block):
            sizes = lengths[first : first + block]
            entries = slice(int(ends[first] - sizes[0]), int(ends[first + len(sizes) - 1]))
            keep = known[entries]
            rows = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)[keep]
            block_columns = columns[entries][keep]
            block_counts = counts[entries][keep]
            weights = 1.0 + np.log(block_counts)
            if self.name_boost:
                assert named is not None
                weights[named[entries][keep]] *= np.float32(1.0 + self.name_boost)
            weights *= self.idf[block_columns]
            norms = np.sqrt(np.bincount(rows, weights.astype(np.float64) ** 2, len(sizes)))
            norms[norms == 0] = 1.0
            end = at + len(rows)
            data[at:end] = weights / norms[rows]
            indices[at:end] = block_columns
            frequencies[at:end] = block_counts
            row_sizes[first : first + len(sizes)] = np.bincount(rows, minlength=len(sizes))
            at = end
        indptr = np.concatenate(([0], np.cumsum(row_sizes)))
        shape = (len(lengths), len(self.vocabulary))
        matrix = sp.csr_matrix((data, indices, indptr), shape)
        # Own index arrays: sorting one matrix's indices in place must not reorder the other's.
        counted = sp.csr_matrix((frequencies, indices.copy(), indptr.copy()), shape)
        matrix.sort_indices()
        counted.sort_indices()
        return matrix, counted

    @classmethod
    def load(cls, vocabulary_path: Path) -> TfidfModel:
        """The vocabulary of a version written before it was memory-mapped (its own
        `vocabulary.json`; `recommender.signals.tfidf_cosine` reads and writes the rest)."""
        data = orjson.loads(vocabulary_path.read_bytes())
        return cls(
            {term: i for i, term in enumerate(data["terms"])},
            np.asarray(data["idf"], dtype=np.float32),
            data.get("name_boost", 0.0),  # versions built before the boost have none
        )


def smoothed_idf(texts: int, document_frequency: NDArray[np.int64]) -> NDArray[np.float32]:
    """`1 + ln((n + 1) / (df + 1))` of terms found in `document_frequency` of `texts` texts."""
    idf: NDArray[np.float32] = (1.0 + np.log((texts + 1.0) / (document_frequency + 1.0))).astype(
        np.float32
    )
    return idf


def new_terms(
    vocabulary: Mapping[str, int], terms: CatalogTerms
) -> tuple[list[str], NDArray[np.int32]]:
    """The terms of `terms` that `vocabulary` lacks, in order, and each of `terms`' own columns
    in the vocabulary extended by them (appended after its last column)."""
    added: list[str] = []
    columns = np.empty(len(terms.vocabulary), dtype=np.int32)
    for term, own in terms.vocabulary.items():
        column = vocabulary.get(term)
        if column is None:
            column = len(vocabulary) + len(added)
            added.append(term)
        columns[own] = column
    return added, columns


def merge_rows(
    served: sp.csr_matrix, reused: NDArray[np.int64], fresh: sp.csr_matrix, columns: int
) -> sp.csr_matrix:
    """A matrix whose row i is `served`'s row `reused[i]`, or, where that is -1, the next row of
    `fresh` (in order); `columns` wide (a vocabulary extended on the right)."""
    kept = reused >= 0
    taken = served[reused[kept]]
    widened = [
        sp.csr_matrix((rows.data, rows.indices, rows.indptr), (len(rows.indptr) - 1, columns))
        for rows in (taken, fresh)
    ]
    stacked = sp.vstack(widened, format="csr")
    order = np.empty(len(reused), dtype=np.int64)
    order[kept] = np.arange(int(np.count_nonzero(kept)))
    order[~kept] = np.arange(int(np.count_nonzero(kept)), len(reused))
    merged: sp.csr_matrix = stacked[order]
    merged.sort_indices()
    return merged


def pair_similarities(
    matrix: sp.csr_matrix,
    sources: NDArray[np.int64],
    candidates: NDArray[np.int64],
    *,
    documents: sp.csr_matrix | None = None,
) -> NDArray[np.float32]:
    """Cosine of each source row with each of its candidate rows, shape candidates.shape.

    With `documents`, the product of each source's row of `matrix` with its candidates' rows of
    `documents` instead (e.g. BM25 queries against BM25 documents). Candidate ids below 0
    (padding) get 0.
    """
    documents = matrix if documents is None else documents
    out = np.zeros(candidates.shape, dtype=np.float32)
    width = candidates.shape[1] if candidates.ndim == 2 else 0
    # Blocks of sources: one sparse product per block instead of one per source.
    for start in range(0, len(sources), _PAIR_BLOCK):
        block = candidates[start : start + _PAIR_BLOCK]
        valid = block >= 0
        if not valid.any():
            continue
        block_sources = sources[start : start + _PAIR_BLOCK]
        wanted = block[valid]
        unique, position = np.unique(wanted, return_inverse=True)
        if len(block_sources) * len(unique) <= _PRODUCT_EXCESS * len(wanted):
            every_pair = (matrix[block_sources] @ documents[unique].T).toarray()
            scores = every_pair[np.nonzero(valid)[0], position.ravel()]
        else:
            rows = np.repeat(block_sources, width)[valid.ravel()]
            scores = _row_products(matrix, rows, documents, wanted)
        out[start : start + len(block)][valid] = scores
    return out


def _row_products(
    matrix: sp.csr_matrix,
    rows: NDArray[np.int64],
    documents: sp.csr_matrix,
    wanted: NDArray[np.int64],
) -> NDArray[np.float32]:
    """Each `matrix[rows[i]] · documents[wanted[i]]`, `_PAIRS_AT_ONCE` pairs at a time."""
    out = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), _PAIRS_AT_ONCE):
        pair = slice(start, start + _PAIRS_AT_ONCE)
        product = matrix[rows[pair]].multiply(documents[wanted[pair]])
        out[pair] = np.asarray(product.sum(axis=1)).ravel()
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


def load_matrix(directory: Path, stem: str) -> sp.csr_matrix:
    """The CSR matrix a version holds under `stem`: memory-mapped from its `.npy` files
    (`mapped_files.save_csr`), or read from the `{stem}.npz` of a version written before them."""
    if (directory / csr_files(stem)[0]).is_file():
        return load_csr(directory, stem)
    return sp.csr_matrix(sp.load_npz(directory / f"{stem}.npz"), dtype=np.float32)


def stack_rows(rows: list[sp.csr_matrix], columns: int) -> sp.csr_matrix:
    """One CSR matrix of single-row ones (`scipy.sparse.vstack` is ten times slower here)."""
    if not rows:
        return sp.csr_matrix((0, columns), dtype=np.float32)
    lengths = np.fromiter((row.nnz for row in rows), dtype=np.int64, count=len(rows))
    return sp.csr_matrix(
        (
            np.concatenate([row.data for row in rows]),
            np.concatenate([row.indices for row in rows]),
            np.concatenate([[0], np.cumsum(lengths)]),
        ),
        shape=(len(rows), columns),
    )
