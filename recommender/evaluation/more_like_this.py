"""Lexical retrieval: an in-memory BM25 index and Elasticsearch's More-Like-This query.

`LexicalIndex.more_like_this` reimplements an Elasticsearch `more_like_this` query on one
`text` field analysed by the `standard` analyzer, with every default left alone:

* analysis: Unicode word tokens, lowercased, **no stop words** (ES's `standard` analyzer and
  the MLT query's `stop_words` are both empty by default). On news this lets function words
  ("the", "to", "of") fill many of the 25 query slots, since their large in-document frequency
  outweighs a small idf; that weakness is the baseline's, so it is kept. `ENGLISH` (Lucene's
  classic English stop set) is there for callers that want the stronger variant.
* term selection (ES `XMoreLikeThis`): a term of the source qualifies when it occurs at least
  `min_term_freq` (2) times in it, in at least `min_doc_freq` (5) documents and at most
  `max_doc_freq` (unbounded), and is not a noise word; the `max_query_terms` (25) best by
  `tf * idf` are kept, idf being Lucene's `ClassicSimilarity.idf = 1 + ln((numDocs + 1) /
  (docFreq + 1))` over all documents (Lucene 7+; older versions used `numDocs / (docFreq +
  1)`). Score ties, which Lucene leaves to hash order, go to the alphabetically first term here.
  A free text (`more_like_this_text`) is read up to its first 5,000 tokens, an indexed document
  whole (ES reads its term vector).
* the query: a boolean OR of the selected terms, each scored with Lucene's `BM25Similarity`
  (k1 1.2, b 0.75, idf `ln(1 + (docCount - df + 0.5) / (df + 0.5))`, document lengths through
  Lucene's one-byte norm encoding, avgdl over the documents that have the field), with
  `minimum_should_match` "30%": `floor(0.3 * clauses)`, and at least one clause.
* the source document is excluded; equal scores are ordered by document id (as Lucene does on
  one shard).

Scores agree with Lucene's up to float32 rounding. Documents are rows 0..n-1 of the texts given
to `LexicalIndex.build`; the index is immutable.

Known overlap: `LexicalIndex` is a second BM25 beside the served signal's `recommender.bm25`
(that one scores over the TF-IDF vocabulary as a share of the source's own score; this one
follows Lucene's norms for a faithful baseline). Folding one into the other belongs with the
signal registry's work on `bm25`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from recommender.text_analysis import STANDARD, Analyzer


def _decode_norm(byte: int) -> int:
    """Lucene's `SmallFloat.byte4ToInt`: exact below 24, then four significant bits."""
    if byte < 24:
        return byte
    bits, shift = (byte - 24) & 7, ((byte - 24) >> 3) - 1
    return 24 + (bits if shift < 0 else (bits | 8) << shift)


# Lucene keeps a field's length in one byte; these are the 256 lengths a byte decodes to.
_NORM_LENGTHS = np.array([_decode_norm(byte) for byte in range(256)], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class MltParams:
    """More-Like-This settings; the defaults are Elasticsearch's."""

    min_term_freq: int = 2
    min_doc_freq: int = 5
    max_doc_freq: int | None = None
    min_word_length: int = 0
    max_word_length: int = 0
    """0 means no limit."""
    max_query_terms: int = 25
    minimum_should_match: int = 30
    """Percent of the query's clauses a hit must match; negative means "all but that percent"."""
    stop_words: frozenset[str] = frozenset()
    """Terms never selected (on top of what the analyzer drops)."""
    max_num_tokens_parsed: int = 5000
    """Tokens of a free text read at most (a document's stored terms are read whole)."""


@dataclass(frozen=True, slots=True, eq=False)
class MltQuery:
    """A More-Like-This query: the selected terms, best first, and how many must match."""

    term_ids: NDArray[np.int64]
    terms: tuple[str, ...]
    weights: NDArray[np.float32]
    """BM25 idf of each term: its clause scores `weight * saturation(tf, length)`."""
    min_should_match: int
    """Clauses a document must match; at least 1, so an empty query matches nothing."""


def min_should_match(clauses: int, percent: int) -> int:
    """Elasticsearch's `minimum_should_match` for a percentage, floored at one clause.

    A boolean query of SHOULD clauses needs one match anyway, so 0 and 1 mean the same.
    """
    calc = math.trunc(clauses * percent / 100)
    return max(1, clauses + calc if calc < 0 else calc)


@dataclass(frozen=True, slots=True, eq=False)
class LexicalIndex:
    """Term statistics and BM25 postings of a fixed list of texts (row i is document i)."""

    analyzer: Analyzer
    terms: tuple[str, ...]
    """The vocabulary in sorted order; a term's position is its id."""
    doc_freq: NDArray[np.int64]
    doc_length: NDArray[np.int64]
    """Tokens per document after analysis."""
    classic_idf: NDArray[np.float32]
    """MLT's term-selection idf: `1 + ln((numDocs + 1) / (df + 1))` over all documents."""
    bm25_idf: NDArray[np.float32]
    """BM25 idf `ln(1 + (docCount - df + 0.5) / (df + 0.5))` over documents with tokens."""
    _term_ids: dict[str, int] = field(repr=False)
    _tf: sp.csr_matrix = field(repr=False)  # documents x terms: raw term frequencies
    _postings: sp.csr_matrix = field(repr=False)  # terms x documents: BM25 saturation

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        *,
        analyzer: Analyzer = STANDARD,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> LexicalIndex:
        """Analyse and index `texts` with BM25 parameters `k1` and `b`."""
        provisional: dict[str, int] = {}
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        columns: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
        counts: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
        for row, text in enumerate(texts):
            tokens = analyzer.tokens(text)
            new_terms = itertools.filterfalse(provisional.__contains__, dict.fromkeys(tokens))
            provisional.update(zip(new_terms, itertools.count(len(provisional))))
            ids = np.fromiter(map(provisional.__getitem__, tokens), np.int64, len(tokens))
            unique, count = np.unique(ids, return_counts=True)
            columns.append(unique)
            counts.append(count)
            indptr[row + 1] = indptr[row] + len(unique)
        # Renumber terms alphabetically, so that "smaller id" means "alphabetically first".
        terms = sorted(provisional)
        renumber = np.empty(len(terms), dtype=np.int64)
        renumber[np.fromiter(map(provisional.__getitem__, terms), np.int64, len(terms))] = (
            np.arange(len(terms))
        )
        tf = sp.csr_matrix(
            (np.concatenate(counts).astype(np.int32), renumber[np.concatenate(columns)], indptr),
            shape=(len(texts), len(terms)),
        )
        tf.sort_indices()

        n_docs = len(texts)
        doc_length = np.asarray(tf.sum(axis=1), dtype=np.int64).ravel()
        doc_freq = np.bincount(tf.indices, minlength=len(terms)).astype(np.int64)
        with_tokens = int(np.count_nonzero(doc_length))
        avgdl = np.float32(doc_length.sum() / max(1, with_tokens))
        # BM25 sees each length through Lucene's one-byte norm (the largest decodable <= it).
        norm_length = _NORM_LENGTHS[np.searchsorted(_NORM_LENGTHS, doc_length, "right") - 1]
        one, k1_, b_ = np.float32(1), np.float32(k1), np.float32(b)
        norm_inverse = one / (k1_ * ((one - b_) + b_ * norm_length.astype(np.float32) / avgdl))
        rows = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        saturation = one - one / (one + tf.data.astype(np.float32) * norm_inverse[rows])
        postings = sp.csr_matrix((saturation, tf.indices, tf.indptr), shape=tf.shape).T.tocsr()
        postings.sort_indices()
        return cls(
            analyzer=analyzer,
            terms=tuple(terms),
            doc_freq=doc_freq,
            doc_length=doc_length,
            # ES hands ClassicSimilarity the reader's numDocs: every document, empty or not.
            classic_idf=(np.log((n_docs + 1) / (doc_freq + 1)) + 1).astype(np.float32),
            bm25_idf=np.log1p((with_tokens - doc_freq + 0.5) / (doc_freq + 0.5)).astype(np.float32),
            _term_ids={term: i for i, term in enumerate(terms)},
            _tf=tf,
            _postings=postings,
        )

    @property
    def n_docs(self) -> int:
        """Number of indexed documents."""
        return len(self.doc_length)

    def query_for_doc(self, doc: int, params: MltParams = MltParams()) -> MltQuery:
        """The MLT query Elasticsearch builds from indexed document `doc`."""
        if not 0 <= doc < self.n_docs:
            raise IndexError(f"document {doc} is not in the index (0..{self.n_docs - 1})")
        return self._single_query(self._tf[doc], params)

    def query_for_text(self, text: str, params: MltParams = MltParams()) -> MltQuery:
        """The MLT query for an unindexed text (e.g. an unsaved draft), read as ES reads `like`."""
        tokens = self.analyzer.tokens(text)[: params.max_num_tokens_parsed]
        known = [self._term_ids[token] for token in tokens if token in self._term_ids]
        ids, counts = np.unique(np.array(known, dtype=np.int64), return_counts=True)
        row = sp.csr_matrix((counts, ids, [0, len(ids)]), shape=(1, len(self.terms)))
        return self._single_query(row, params)

    def search(
        self, query: MltQuery, k: int, *, exclude: Collection[int] = ()
    ) -> list[tuple[int, float]]:
        """The top `k` documents for `query` as (doc, score), best first, ties by doc id."""
        scores, matched = self._score_all(query)
        scores[matched < query.min_should_match] = -np.inf
        scores[np.fromiter(exclude, np.int64, len(exclude))] = -np.inf
        ids, top = _top_k(scores[np.newaxis, :], k)
        return [(int(i), float(s)) for i, s in zip(ids[0], top[0], strict=True) if i >= 0]

    def more_like_this(
        self, doc: int, k: int, params: MltParams = MltParams()
    ) -> list[tuple[int, float]]:
        """Elasticsearch MLT for indexed document `doc` (itself excluded): (doc, score) pairs."""
        return self.search(self.query_for_doc(doc, params), k, exclude=(doc,))

    def more_like_this_text(
        self,
        text: str,
        k: int,
        *,
        exclude: Collection[int] = (),
        params: MltParams = MltParams(),
    ) -> list[tuple[int, float]]:
        """Elasticsearch MLT for a free text, leaving out the documents in `exclude`."""
        return self.search(self.query_for_text(text, params), k, exclude=exclude)

    def bm25_query_scores(
        self, doc: int, candidates: ArrayLike, params: MltParams = MltParams()
    ) -> NDArray[np.float32]:
        """BM25 score of each candidate for `doc`'s MLT query, for fusion with other signals.

        A plain sum over the clauses a candidate matches (0 when none): `minimum_should_match`
        is not applied, so a candidate sharing one rare term keeps its small score.
        """
        scores, _ = self._score_all(self.query_for_doc(doc, params))
        return scores[np.asarray(candidates, dtype=np.int64)]

    def more_like_this_all(
        self,
        k: int,
        params: MltParams = MltParams(),
        *,
        rows: ArrayLike | None = None,
        block_size: int = 512,
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """`more_like_this(doc, k)` for each source at once, as (ids, scores) of shape (m, k).

        The sources are the documents in `rows` (all documents when None); result row i belongs
        to the i-th source. Rows with fewer than `k` hits are padded with id -1 and score 0.
        Sources go in blocks of `block_size`: the block's query rows times the postings give its
        scores, and the same product on 0/1 values counts each document's matched clauses.
        """
        sources = np.arange(self.n_docs) if rows is None else np.asarray(rows, dtype=np.int64)
        queries, required = self._select(self._tf[sources], params)
        query_ones = queries.copy()
        query_ones.data[:] = 1
        posting_ones = self._postings.copy()
        posting_ones.data[:] = 1
        ids = np.full((len(sources), k), -1, dtype=np.int64)
        scores = np.zeros((len(sources), k), dtype=np.float32)
        for start in range(0, len(sources), block_size):
            stop = min(len(sources), start + block_size)
            block = np.asarray((queries[start:stop] @ self._postings).toarray(), np.float32)
            matched = (query_ones[start:stop] @ posting_ones).toarray()
            block[matched < required[start:stop, np.newaxis]] = -np.inf
            block[np.arange(stop - start), sources[start:stop]] = -np.inf
            ids[start:stop], scores[start:stop] = _top_k(block, k)
        return ids, scores

    def _single_query(self, tf_row: sp.csr_matrix, params: MltParams) -> MltQuery:
        selected, required = self._select(tf_row, params)
        term_ids = np.asarray(selected.indices, dtype=np.int64)
        # Best first, the order Lucene's priority queue hands the clauses out in.
        tf = np.asarray(tf_row[:, term_ids].toarray(), dtype=np.float32).ravel()
        order = np.lexsort((term_ids, -(tf * self.classic_idf[term_ids])))
        return MltQuery(
            term_ids=term_ids[order],
            terms=tuple(self.terms[i] for i in term_ids[order]),
            weights=np.asarray(selected.data, dtype=np.float32)[order],
            min_should_match=int(required[0]),
        )

    def _eligible_terms(self, params: MltParams) -> NDArray[np.bool_]:
        df = self.doc_freq
        keep = df > 0
        if params.min_doc_freq > 0:
            keep &= df >= params.min_doc_freq
        if params.max_doc_freq is not None:
            keep &= df <= params.max_doc_freq
        if params.min_word_length > 0 or params.max_word_length > 0:
            length = np.fromiter(map(len, self.terms), np.int64, len(self.terms))
            if params.min_word_length > 0:
                keep &= length >= params.min_word_length
            if params.max_word_length > 0:
                keep &= length <= params.max_word_length
        for word in params.stop_words:
            if word in self._term_ids:
                keep[self._term_ids[word]] = False
        return keep

    def _select(
        self, tf_rows: sp.csr_matrix, params: MltParams
    ) -> tuple[sp.csr_matrix, NDArray[np.int64]]:
        """Each row's MLT query as a sparse row of BM25 idf weights, and its required matches."""
        n_rows = tf_rows.shape[0]
        rows = np.repeat(np.arange(n_rows), np.diff(tf_rows.indptr))
        cols = np.asarray(tf_rows.indices, dtype=np.int64)
        tf = np.asarray(tf_rows.data, dtype=np.float32)
        keep = self._eligible_terms(params)[cols]
        if params.min_term_freq > 0:
            keep &= tf >= params.min_term_freq
        rows, cols, tf = rows[keep], cols[keep], tf[keep]
        # Per row: best tf * idf first, ties to the smaller (alphabetically first) term.
        order = np.lexsort((cols, -(tf * self.classic_idf[cols]), rows))
        rows, cols = rows[order], cols[order]
        per_row = np.bincount(rows, minlength=n_rows)
        row_start = np.cumsum(per_row) - per_row
        top = np.arange(len(rows)) - row_start[rows] < params.max_query_terms
        rows, cols = rows[top], cols[top]
        queries = sp.csr_matrix(
            (self.bm25_idf[cols], (rows, cols)), shape=(n_rows, len(self.terms)), dtype=np.float32
        )
        percent = params.minimum_should_match
        required = np.array(
            [min_should_match(c, percent) for c in np.minimum(per_row, params.max_query_terms)],
            dtype=np.int64,
        )
        return queries, required

    def _score_all(self, query: MltQuery) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Every document's score for `query`, and how many of its clauses it matched."""
        scores = np.zeros(self.n_docs, dtype=np.float32)
        matched = np.zeros(self.n_docs, dtype=np.int64)
        indptr, indices, data = self._postings.indptr, self._postings.indices, self._postings.data
        # Ascending term ids: the order the sparse product of `more_like_this_all` sums in.
        for term, weight in sorted(zip(query.term_ids.tolist(), query.weights, strict=True)):
            docs = indices[indptr[term] : indptr[term + 1]]
            scores[docs] += weight * data[indptr[term] : indptr[term + 1]]
            matched[docs] += 1
        return scores, matched


def _top_k(scores: NDArray[np.float32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Per row, the `k` best finite scores (ties by column), as (columns, scores), -1/0 padded."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    n_rows, n_cols = scores.shape
    take = min(k, n_cols)
    if take < n_cols:
        cols = np.argpartition(scores, n_cols - take, axis=1)[:, n_cols - take :]
    else:
        cols = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    top = np.take_along_axis(scores, cols, axis=1)
    # argpartition splits ties at the boundary arbitrarily; redo those rows by (score, id).
    kth = top.min(axis=1, initial=np.inf)
    tied = np.isfinite(kth) & ((scores >= kth[:, np.newaxis]).sum(axis=1) > take)
    for row in np.flatnonzero(tied):
        candidates = np.flatnonzero(scores[row] >= kth[row])
        cols[row] = candidates[np.lexsort((candidates, -scores[row, candidates]))[:take]]
        top[row] = scores[row, cols[row]]
    order = np.lexsort((cols, -top), axis=1)
    cols = np.take_along_axis(cols, order, axis=1)
    top = np.take_along_axis(top, order, axis=1)
    found = np.isfinite(top)
    ids = np.full((n_rows, k), -1, dtype=np.int64)
    best = np.zeros((n_rows, k), dtype=np.float32)
    ids[:, :take] = np.where(found, cols, -1)
    best[:, :take] = np.where(found, top, 0)
    return ids, best
