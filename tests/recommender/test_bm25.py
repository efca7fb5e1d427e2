"""BM25 of a source's terms against candidates: rare shared terms count most, long texts less."""

from __future__ import annotations

import numpy as np

from recommender.bm25 import Bm25Matrices


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
