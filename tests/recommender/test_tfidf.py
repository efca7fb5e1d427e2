"""TF-IDF rows and the pairwise cosines the neighbour precomputation uses."""

from __future__ import annotations

import math

import numpy as np

from recommender.tfidf import TfidfModel, pair_similarities, query_similarities

TEXTS = [
    "volcano eruption grounds flights across iceland",
    "iceland volcano ash cloud: flights grounded again, volcano still erupting",
    "football striker scores twice as league leaders win",
    "league match: coach praises striker after football win",
    "bitcoin price falls as crypto exchange halts withdrawals",
]


def test_rows_are_sublinear_tf_times_idf_and_unit_length() -> None:
    model, matrix = TfidfModel.fit(TEXTS)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    assert np.allclose(norms, 1.0, atol=1e-6)
    row = matrix[1].toarray().ravel()
    volcano, ash = model.vocabulary["volcano"], model.vocabulary["ash"]
    # "volcano" twice (1 + ln 2) in 2 of 5 texts; "ash" once in 1 of 5.
    expected = ((1 + math.log(2)) * (1 + math.log(6 / 3))) / (1 * (1 + math.log(6 / 2)))
    assert math.isclose(row[volcano] / row[ash], expected, rel_tol=1e-5)


def test_unknown_terms_are_ignored_by_transform() -> None:
    model, _ = TfidfModel.fit(TEXTS)
    assert model.transform(["zebra quantum"]).nnz == 0
    assert model.transform(["volcano zebra"]).nnz == 1


def test_pair_similarities_are_the_cosines_of_each_pair_with_padding_zero() -> None:
    _, matrix = TfidfModel.fit(TEXTS * 120)  # more sources than one block
    dense = matrix.toarray()
    rng = np.random.default_rng(7)
    sources = np.arange(len(TEXTS) * 120, dtype=np.int64)
    candidates = rng.integers(-1, len(sources), size=(len(sources), 6)).astype(np.int64)
    got = pair_similarities(matrix, sources, candidates)
    expected = np.einsum("ij,ikj->ik", dense[sources], dense[np.maximum(candidates, 0)])
    expected[candidates < 0] = 0
    assert got.shape == candidates.shape
    assert np.allclose(got, expected, atol=1e-6)


def test_query_similarities_match_pair_similarities_for_a_catalog_row() -> None:
    model, matrix = TfidfModel.fit(TEXTS)
    candidates = np.array([1, 2, -1, 4], dtype=np.int64)
    from_query = query_similarities(matrix, model.transform([TEXTS[0]]), candidates)
    from_pairs = pair_similarities(matrix, np.array([0]), candidates[None, :])[0]
    assert np.allclose(from_query, from_pairs, atol=1e-6)
    assert from_query[0] > 0.2 and from_query[2] == 0
