"""BM25 of a source's terms against candidates: rare shared terms count most, long texts less."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.bm25 import Bm25Matrices, Bm25Model, coverage_queries
from recommender.tfidf import TfidfModel, analyse


def scores_for(texts: list[str], source: int) -> list[float]:
    bm25 = Bm25Matrices.fit(texts)
    return np.asarray((bm25.queries[source] @ bm25.documents.T).toarray()).ravel().tolist()


def test_a_rare_shared_term_outweighs_a_common_one() -> None:
    texts = [
        "quake strikes Valparaiso harbour",
        "Valparaiso harbour reopens",
        "quake strikes Osaka",
        "quake drill held",
        "quake insurance rises",
    ]
    scores = scores_for(texts, 0)
    assert scores[1] > scores[2] > 0  # "valparaiso harbour" (rare) beats "quake strikes"
    assert scores_for(texts, 3)[4] > 0 and scores_for(texts, 3)[1] == 0


def test_long_documents_are_normalised_by_length() -> None:
    filler = " ".join(f"filler{i}" for i in range(60))
    texts = ["merger Acme Globex", "Acme Globex merger talks", f"Acme Globex merger {filler}"]
    scores = scores_for(texts, 0)
    assert scores[1] > scores[2] > 0


def test_repeated_query_terms_count_once_and_stop_words_not_at_all() -> None:
    texts = ["the Acme Acme Acme", "the Acme", "the Globex"]
    bm25 = Bm25Matrices.fit(texts)
    assert bm25.queries[0].sum() == 1.0  # "acme" once, "the" dropped
    assert scores_for(texts, 0)[2] == 0


def test_the_share_is_bm25_against_the_sources_own_score() -> None:
    texts = [
        "quake strikes Valparaiso harbour",
        "Valparaiso harbour reopens after the quake",
        "quake strikes Osaka",
        "markets rally",
    ]
    analysed = [analyse(text, names=False) for text in texts]
    tfidf, _, frequencies = TfidfModel.fit_terms(analysed)
    model, documents = Bm25Model.fit(frequencies)
    raw = Bm25Matrices.fit(texts)
    scores = (raw.queries @ raw.documents.T).toarray()
    shares = (coverage_queries(documents) @ documents.T).toarray()
    assert np.allclose(np.diag(shares), 1.0)
    assert np.allclose(shares, scores / np.diag(scores)[:, None], atol=1e-6)
    assert shares[0, 1] > shares[0, 2] > 0 and shares[0, 3] == 0
    # A text outside the catalog (a draft) is weighed with the catalog's statistics.
    _, draft_frequencies = tfidf.transform_terms([analyse(texts[1], names=False)])
    draft = model.documents(draft_frequencies)
    assert np.allclose(draft.toarray(), documents[1].toarray())


def test_a_model_without_bm25_scores_nothing() -> None:
    model = Bm25Model.empty(3)
    documents = model.documents(sp.csr_matrix(np.array([[1.0, 2.0, 0.0]])))
    assert (coverage_queries(documents) @ documents.T).toarray().tolist() == [[0.0]]


def test_a_saved_model_loads_the_same(tmp_path: Path) -> None:
    model, _ = Bm25Model.fit(sp.csr_matrix(np.array([[1.0, 0.0], [2.0, 3.0]])))
    model.save(tmp_path / "bm25.json")
    loaded = Bm25Model.load(tmp_path / "bm25.json")
    assert np.array_equal(loaded.idf, model.idf)
    assert (loaded.average_length, loaded.k1, loaded.b) == (3.0, model.k1, model.b)
