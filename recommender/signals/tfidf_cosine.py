"""The TF-IDF cosine ("lexical"): the words two articles share, rare ones weighing more (names,
places and numbers that an embedding model blurs). The model and its math are
`recommender.tfidf`; a version keeps the vocabulary and every article's row."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.ranking import FusionWeights
from recommender.signals.base import Candidates, Catalog, RankingSignal, Reason, Side, Source
from recommender.tfidf import (
    FILLER_WORDS,
    TfidfModel,
    analyse,
    load_matrix,
    pair_similarities,
    query_similarities,
    save_matrix,
    stack_rows,
)

LEXICAL = "lexical.npz"
"""float32 CSR (count, terms): the TF-IDF rows of the articles."""
VOCABULARY = "vocabulary.json"
"""The TF-IDF terms and idf weights (to weigh drafts and new articles)."""
#: Shared terms an explanation names.
SHARED_TERMS = 5


@dataclass(frozen=True)
class TfidfPart:
    """The TF-IDF of one version."""

    model: TfidfModel
    matrix: sp.csr_matrix
    frequencies: sp.csr_matrix | None = None
    """The articles' raw term counts over the vocabulary, when just fitted (what BM25 weighs)."""

    @cached_property
    def terms(self) -> list[str]:
        """Column number -> term."""
        terms = [""] * len(self.model.vocabulary)
        for term, column in self.model.vocabulary.items():
            terms[column] = term
        return terms

    @cached_property
    def text_rows(self) -> Callable[[str], tuple[sp.csr_matrix, sp.csr_matrix]]:
        """text -> the TF-IDF row and raw term counts of a text outside the version (the
        caller must not change them)."""

        # Remembered: the TF-IDF and BM25 signals both prepare a draft or live article from
        # them, one after the other, and analysing a text costs more than the rest of a draft.
        @lru_cache(maxsize=8)
        def rows(text: str) -> tuple[sp.csr_matrix, sp.csr_matrix]:
            return self.model.transform_terms([analyse(text, bool(self.model.name_boost))])

        return rows


class TfidfCosine(RankingSignal):
    name = "lexical"
    parameters: ClassVar[Mapping[str, float]] = {
        "lexical": 1.0,
        "name_boost": 0.0,
        # name_boost: a proper noun or number weighs 1 + name_boost times as much (fixed when
        # the version's TF-IDF is fitted; the analysis seeks names only when it is set).
    }
    files = (LEXICAL, VOCABULARY)
    strategy = "tfidf"

    def weight(self, weights: FusionWeights) -> float:
        return weights["lexical"]

    def fit(self, catalog: Catalog, weights: FusionWeights, fitted: Mapping[str, Any]) -> TfidfPart:
        model, matrix, frequencies = TfidfModel.fit_catalog(
            catalog.terms, weights["name_boost"], catalog.block
        )
        return TfidfPart(model, matrix, frequencies)

    def save(self, part: TfidfPart, directory: Path) -> None:
        save_matrix(part.matrix, directory / LEXICAL)
        part.model.save(directory / VOCABULARY)

    def load(self, directory: Path, count: int, loaded: Mapping[str, Any]) -> TfidfPart:
        model, matrix = TfidfModel.load(directory / VOCABULARY), load_matrix(directory / LEXICAL)
        if matrix.shape != (count, len(model.vocabulary)):
            raise ValueError(f"{LEXICAL} is {matrix.shape}, not {count} rows of the vocabulary")
        return TfidfPart(model, matrix)

    def absent(self, count: int, loaded: Mapping[str, Any]) -> TfidfPart:
        raise ValueError(f"{LEXICAL} and {VOCABULARY} are not in the manifest")

    def rows(self, part: TfidfPart) -> sp.csr_matrix:
        return part.matrix

    def prepare(self, part: TfidfPart, text: str) -> sp.csr_matrix:
        return part.text_rows(text)[0]

    def stack(self, part: TfidfPart, prepared: Sequence[sp.csr_matrix]) -> sp.csr_matrix:
        return stack_rows(list(prepared), part.matrix.shape[1])

    def query(self, part: TfidfPart, features: sp.csr_matrix, row: int) -> sp.csr_matrix:
        return features[row]

    def pairs(
        self,
        part: TfidfPart,
        side: Side,
        sources: NDArray[np.int64],
        candidates: Candidates,
        weights: FusionWeights,
    ) -> NDArray[np.float32]:
        return pair_similarities(side.features[self.name], sources, candidates.rows)

    def scores(
        self, part: TfidfPart, source: Source, candidates: Candidates, weights: FusionWeights
    ) -> NDArray[np.float32]:
        matrix = candidates.side.features[self.name]
        return query_similarities(matrix, source.queries[self.name], candidates.rows)

    def explain(
        self,
        part: TfidfPart,
        source: tuple[Side, int],
        target: tuple[Side, int],
        weights: FusionWeights,
    ) -> dict[str, Any]:
        """The cosine, and the shared terms that weigh most in it (filler words left out)."""
        (source_side, source_row), (target_side, target_row) = source, target
        source_terms = source_side.features[self.name][source_row]
        shared = source_terms.multiply(target_side.features[self.name][target_row]).tocoo()
        strongest = [
            part.terms[int(shared.col[i])] for i in np.argsort(-shared.data, kind="stable")
        ]
        return {
            "lexical": round(float(shared.data.sum()), 4),
            "shared_terms": [term for term in strongest if term not in FILLER_WORDS][:SHARED_TERMS],
        }

    def reasons(self, why: Mapping[str, Any]) -> list[Reason]:
        shared = [
            Reason(
                f"shared terms {why['lexical']:.2f}",
                "Shared terms: the TF-IDF weight of the words both stories use (rare words weigh "
                "more)",
            )
        ]
        if why["shared_terms"]:
            shared.append(Reason(", ".join(why["shared_terms"]), own_line=True))
        return shared

    def alone(self, part: TfidfPart, side: Side, sources: NDArray[np.int64]) -> NDArray[np.float32]:
        """Plain cosine of the served TF-IDF vectors over the whole catalog."""
        matrix = side.features[self.name]
        dense: NDArray[np.float32] = (matrix[sources] @ matrix.T).toarray()
        return dense
