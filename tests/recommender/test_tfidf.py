"""TF-IDF rows and the pairwise cosines the neighbour precomputation uses."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from recommender.signals.tfidf_cosine import load_vocabulary, save_vocabulary
from recommender.tfidf import (
    ANALYSIS_ID,
    CatalogTerms,
    CatalogTermsBuilder,
    TextTerms,
    TfidfModel,
    analyse,
    pair_similarities,
    query_similarities,
)

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


@pytest.mark.parametrize(
    ("copies", "width"),
    [(120, 6), (60, 40)],  # pair by pair (few candidates of many), one product per block
)
def test_pair_similarities_are_the_cosines_of_each_pair_with_padding_zero(
    copies: int, width: int
) -> None:
    _, matrix = TfidfModel.fit(TEXTS * copies)  # more sources than one block
    dense = matrix.toarray()
    rng = np.random.default_rng(7)
    sources = np.arange(len(TEXTS) * copies, dtype=np.int64)
    candidates = rng.integers(-1, len(sources), size=(len(sources), width)).astype(np.int64)
    got = pair_similarities(matrix, sources, candidates)
    expected = np.einsum("ij,ikj->ik", dense[sources], dense[np.maximum(candidates, 0)])
    expected[candidates < 0] = 0
    assert got.shape == candidates.shape
    assert np.allclose(got, expected, atol=1e-6)


def test_a_stored_analysis_fits_the_same_matrix_as_the_texts() -> None:
    for boost in (0.0, 2.0):
        analysed = [analyse(text, names=bool(boost)) for text in LOOK_ALIKES + TEXTS]
        stored = [TextTerms(**json.loads(json.dumps(asdict(a)))) for a in analysed]
        model, matrix, _ = TfidfModel.fit_terms(stored, name_boost=boost)
        expected_model, expected = TfidfModel.fit(LOOK_ALIKES + TEXTS, name_boost=boost)
        assert model.vocabulary == expected_model.vocabulary
        assert np.array_equal(model.idf, expected_model.idf)
        assert (matrix != expected).nnz == 0
    with pytest.raises(ValueError, match="analysed with their names"):
        TfidfModel.fit_terms([analyse(TEXTS[0], names=False)], name_boost=2.0)


def test_the_analysis_id_names_what_analyse_returns() -> None:
    """Stored analyses are reused under ANALYSIS_ID: if this one changes, change the id too."""
    text = "Officials in Valparaiso said 2,000 homes were hit. The port reopened on Tuesday."
    assert (ANALYSIS_ID, analyse(text, names=True)) == (
        "terms-1",
        TextTerms(
            ["officials", "valparaiso", "2,000", "homes", "hit", "port", "reopened", "tuesday"],
            [1, 1, 1, 1, 1, 1, 1, 1],
            [1, 2, 7],
        ),
    )
    assert analyse(text, names=False).names is None


def test_query_similarities_match_pair_similarities_for_a_catalog_row() -> None:
    model, matrix = TfidfModel.fit(TEXTS)
    candidates = np.array([1, 2, -1, 4], dtype=np.int64)
    from_query = query_similarities(matrix, model.transform([TEXTS[0]]), candidates)
    from_pairs = pair_similarities(matrix, np.array([0]), candidates[None, :])[0]
    assert np.allclose(from_query, from_pairs, atol=1e-6)
    assert from_query[0] > 0.2 and from_query[2] == 0


LOOK_ALIKES = [
    "An earthquake struck near Valparaiso in Chile, officials said the quake damaged the port",
    "Rescuers from Santiago reached Valparaiso, Chile after the earthquake",
    "An earthquake struck near Osaka, officials said the quake damaged homes",
]


def test_a_name_boost_lets_shared_names_outweigh_a_shared_event_kind(tmp_path: Path) -> None:
    rows = np.array([0]), np.array([[1, 2]])
    _, plain = TfidfModel.fit(LOOK_ALIKES)
    same_event, look_alike = pair_similarities(plain, *rows)[0]
    assert look_alike > same_event  # the wording of the event kind wins without the boost
    model, boosted = TfidfModel.fit(LOOK_ALIKES, name_boost=2.0)
    same_event, look_alike = pair_similarities(boosted, *rows)[0]
    assert same_event > look_alike
    # a draft is weighted the same way, and the boost survives a save and a load
    save_vocabulary(model, tmp_path)
    loaded = load_vocabulary(tmp_path)
    assert loaded.name_boost == 2.0
    assert np.allclose(loaded.transform([LOOK_ALIKES[0]]).toarray(), boosted[0].toarray())


def test_a_vocabulary_saved_before_the_boost_loads_without_one(tmp_path: Path) -> None:
    path = tmp_path / "vocabulary.json"
    path.write_text('{"terms": ["volcano"], "idf": [1.5]}')
    assert TfidfModel.load(path).name_boost == 0.0


def test_analyses_added_block_by_block_fit_what_they_fit_at_once() -> None:
    for boost in (0.0, 2.0):
        analysed = [analyse(text, names=bool(boost)) for text in LOOK_ALIKES + TEXTS]
        builder = CatalogTermsBuilder()
        for start in range(0, len(analysed), 3):
            builder.add(analysed[start : start + 3])
        model, matrix, frequencies = TfidfModel.fit_catalog(builder.build(), boost, block=2)
        expected_model, expected, expected_frequencies = TfidfModel.fit_terms(analysed, boost)
        assert model.vocabulary == expected_model.vocabulary
        assert np.array_equal(model.idf, expected_model.idf)
        assert (matrix != expected).nnz == 0 and (frequencies != expected_frequencies).nnz == 0
    mixed = CatalogTerms.of([analyse(TEXTS[0], names=True), analyse(TEXTS[1], names=False)])
    assert mixed.named is None  # one text without its names: no names for the catalog
