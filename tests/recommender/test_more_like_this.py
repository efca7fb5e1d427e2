"""Lexical index and More-Like-This: tiny corpora with known answers, then real articles."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from recommender.evaluation.more_like_this import LexicalIndex, MltParams, min_should_match
from recommender.text_analysis import ENGLISH, ENGLISH_STOP_WORDS, STANDARD
from tests.support.helpers import SHARED, require_shared

DATA = SHARED / "data"

#: min_doc_freq 1 so that a handful of documents can carry a query.
SMALL = MltParams(min_doc_freq=1)


def bm25(tf: int, df: int, length: int, docs: int, avgdl: float) -> float:
    """Lucene's BM25 for one term (lengths below 24 are stored exactly)."""
    idf = math.log(1 + (docs - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + 1.2 * (0.25 + 0.75 * length / avgdl))


def test_standard_analyzer_tokens() -> None:
    text = "Don't stop: the U.S. GDP grew 3.5% to $1,000.50 in e-mail, Smith\u2019s_data"
    assert STANDARD.tokens(text) == [
        "don't", "stop", "the", "u.s", "gdp", "grew", "3.5", "to", "1,000.50", "in", "e",
        "mail", "smith\u2019s_data",
    ]  # fmt: skip
    assert ENGLISH.tokens("The cat is on the mat") == ["cat", "mat"]
    assert len(ENGLISH_STOP_WORDS) == 33


def test_build_statistics() -> None:
    index = LexicalIndex.build(["b a a", "a c", ""])
    assert index.terms == ("a", "b", "c")
    assert index.doc_freq.tolist() == [2, 1, 1]
    assert index.doc_length.tolist() == [3, 2, 0]
    assert index.n_docs == 3
    # Classic idf counts every document; BM25 idf only the two that have tokens.
    assert index.classic_idf[0] == pytest.approx(1 + math.log(4 / 3))
    assert index.bm25_idf[0] == pytest.approx(math.log(1 + 0.5 / 2.5))


CORPUS = [
    "apple apple banana banana cherry",  # 0: the source
    "apple banana",  # 1
    "apple",  # 2
    "banana banana apple apple",  # 3
    "cherry date",  # 4
    "date elder fig",  # 5
]


def test_more_like_this_known_answer() -> None:
    index = LexicalIndex.build(CORPUS)
    query = index.query_for_doc(0, SMALL)
    # cherry occurs once in the source: below min_term_freq 2.
    assert query.terms == ("banana", "apple")
    assert query.min_should_match == 1

    hits = index.more_like_this(0, 10, SMALL)
    assert [doc for doc, _ in hits] == [3, 1, 2]  # never 0 (itself), 4 or 5 (no shared clause)
    avgdl = 17 / 6
    expected = [
        bm25(2, 4, 4, 6, avgdl) + bm25(2, 3, 4, 6, avgdl),
        bm25(1, 4, 2, 6, avgdl) + bm25(1, 3, 2, 6, avgdl),
        bm25(1, 4, 1, 6, avgdl),
    ]
    assert [score for _, score in hits] == pytest.approx(expected, rel=1e-5)
    assert index.more_like_this(0, 2, SMALL) == hits[:2]


def test_default_min_doc_freq_needs_five_documents() -> None:
    index = LexicalIndex.build(CORPUS)
    assert index.query_for_doc(0).terms == ()
    assert index.more_like_this(0, 5) == []


def test_term_selection_by_tf_idf_with_alphabetical_ties() -> None:
    index = LexicalIndex.build(["zeta zeta alpha alpha rare rare rare", "zeta alpha", "rare"])
    # rare: tf 3, df 2; alpha and zeta: tf 2, df 2, an exact tie.
    assert index.query_for_doc(0, SMALL).terms == ("rare", "alpha", "zeta")
    assert index.query_for_doc(0, MltParams(min_doc_freq=1, max_query_terms=2)).terms == (
        "rare",
        "alpha",
    )


def test_noise_word_filters() -> None:
    index = LexicalIndex.build(["the the cat cat elephant elephant", "the cat elephant"])
    assert index.query_for_doc(0, MltParams(min_doc_freq=1, stop_words=frozenset({"the"}))).terms
    assert set(index.query_for_doc(0, MltParams(min_doc_freq=1, min_word_length=4)).terms) == {
        "elephant"
    }
    assert set(index.query_for_doc(0, MltParams(min_doc_freq=1, max_word_length=3)).terms) == {
        "the",
        "cat",
    }
    assert set(index.query_for_doc(0, MltParams(min_doc_freq=1, max_doc_freq=1)).terms) == set()
    english = LexicalIndex.build(["the the cat cat", "the cat"], analyzer=ENGLISH)
    assert english.query_for_doc(0, SMALL).terms == ("cat",)


@pytest.mark.parametrize(
    ("clauses", "percent", "required"),
    [(25, 30, 7), (10, 30, 3), (3, 30, 1), (1, 30, 1), (0, 30, 1), (10, -30, 7), (10, 100, 10)],
)
def test_min_should_match_follows_elasticsearch(clauses: int, percent: int, required: int) -> None:
    assert min_should_match(clauses, percent) == required


def test_min_should_match_drops_documents_matching_too_few_clauses() -> None:
    source = " ".join(f"t{i} t{i}" for i in range(10))  # 10 clauses: 3 must match
    two = "t0 t0 t1 t1"  # the two rarest terms, often, in a short text
    three = "t0 t1 t2 " + "pad " * 20
    common = " ".join(f"t{i}" for i in range(2, 10))
    index = LexicalIndex.build([source, two, three, common, common, common])
    query = index.query_for_doc(0, SMALL)
    assert len(query.terms) == 10
    assert query.min_should_match == 3
    hits = [doc for doc, _ in index.more_like_this(0, 10, SMALL)]
    assert sorted(hits) == [2, 3, 4, 5]
    # Without the 30% rule the two-clause document is found (ahead of the three-clause one).
    plain = MltParams(min_doc_freq=1, minimum_should_match=0)
    assert [doc for doc, _ in index.more_like_this(0, 10, plain)] == [3, 4, 5, 1, 2]
    # The fusion signal keeps the two-clause document's score.
    scores = index.bm25_query_scores(0, np.array([1, 2, 0]), SMALL)
    assert scores.dtype == np.float32
    assert scores[0] > scores[1] > 0
    assert scores[1] == pytest.approx(dict(index.more_like_this(0, 10, SMALL))[2])


def test_equal_scores_are_ordered_by_document_id() -> None:
    docs = ["kiwi kiwi lime lime", "lime", "kiwi lime", "kiwi lime", "kiwi lime", "kiwi"]
    index = LexicalIndex.build(docs)
    assert [doc for doc, _ in index.more_like_this(0, 2, SMALL)] == [2, 3]
    ids, scores = index.more_like_this_all(2, SMALL, block_size=4)
    assert ids[0].tolist() == [2, 3]
    assert scores[0, 0] == scores[0, 1]


def test_document_lengths_pass_through_lucene_norm_bytes() -> None:
    # 40 and 41 tokens share one norm byte (exact lengths stop at 39), so BM25 sees them equal.
    filler = [" ".join(["x"] * 39), " ".join(["x"] * 40)]
    index = LexicalIndex.build(["term term", *(f"term {fill}" for fill in filler), "other"])
    scores = index.bm25_query_scores(0, [1, 2], SMALL)
    assert scores[0] == scores[1] > 0


def test_text_query_excludes_and_matches_the_document_query() -> None:
    index = LexicalIndex.build(CORPUS)
    assert index.more_like_this_text(CORPUS[0], 10, exclude=(0,), params=SMALL) == (
        index.more_like_this(0, 10, SMALL)
    )
    draft = "banana banana bread bread"  # bread is unknown to the index
    assert index.query_for_text(draft, SMALL).terms == ("banana",)
    assert [doc for doc, _ in index.more_like_this_text(draft, 10, params=SMALL)] == [3, 1, 0]
    assert [doc for doc, _ in index.more_like_this_text(draft, 10, exclude=[3], params=SMALL)] == [
        1,
        0,
    ]


def test_text_query_reads_at_most_max_num_tokens_parsed() -> None:
    index = LexicalIndex.build(CORPUS)
    capped = MltParams(min_doc_freq=1, max_num_tokens_parsed=3)
    assert index.query_for_text("apple apple banana banana", capped).terms == ("apple",)


def test_unknown_document_and_empty_k_are_refused() -> None:
    index = LexicalIndex.build(CORPUS)
    with pytest.raises(IndexError):
        index.more_like_this(6, 3)
    with pytest.raises(ValueError, match="k must be"):
        index.more_like_this(0, 0)


def test_batched_pads_rows_with_fewer_hits() -> None:
    index = LexicalIndex.build(CORPUS)
    ids, scores = index.more_like_this_all(4, SMALL, block_size=2)
    assert ids.shape == scores.shape == (6, 4)
    assert ids[0].tolist() == [3, 1, 2, -1]
    assert scores[0, 3] == 0
    assert ids[5].tolist() == [-1] * 4  # date, elder, fig: each once
    some, some_scores = index.more_like_this_all(4, SMALL, rows=[3, 0])
    assert some.tolist() == ids[[3, 0]].tolist()
    assert some_scores.tolist() == scores[[3, 0]].tolist()


@pytest.fixture(scope="module")
def bbc_index() -> LexicalIndex:
    with require_shared(DATA / "bbc-news" / "articles.jsonl").open(encoding="utf-8") as lines:
        records = [json.loads(line) for _, line in zip(range(400), lines, strict=False)]
    return LexicalIndex.build([f"{r['title']} {r['body']}" for r in records])


@pytest.mark.parametrize("params", [MltParams(), MltParams(min_term_freq=1)])
def test_batched_equals_per_document_on_real_articles(
    bbc_index: LexicalIndex, params: MltParams
) -> None:
    ids, scores = bbc_index.more_like_this_all(10, params, block_size=128)
    for doc in range(bbc_index.n_docs):
        hits = bbc_index.more_like_this(doc, 10, params)
        found = ids[doc] >= 0
        assert ids[doc][found].tolist() == [hit for hit, _ in hits]
        assert scores[doc][found].tolist() == pytest.approx([s for _, s in hits], rel=1e-6)
    assert (ids >= 0).mean() > 0.9
