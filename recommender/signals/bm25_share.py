"""The BM25 share: bm25(source, candidate) / bm25(source, source), how much of the source's
distinctive words the candidate covers (0..~1; `recommender.bm25` has the model and why the
share). It weighs the TF-IDF signal's terms, so it is registered after it and reads its part.
A version keeps every article's BM25 document row and the model; versions built before BM25
was a signal have neither, and load with a model that weighs nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.bm25 import Bm25Model, coverage_queries
from recommender.mapped_files import csr_files, load_csr_values, save_csr_values
from recommender.ranking import FusionWeights
from recommender.signals.base import (
    Candidates,
    Catalog,
    CatalogChange,
    RankingSignal,
    Reason,
    Side,
    Source,
)
from recommender.signals.tfidf_cosine import TfidfCosine, TfidfPart
from recommender.tfidf import (
    load_matrix,
    merge_rows,
    pair_similarities,
    query_similarities,
    stack_rows,
)

BM25 = "bm25"
"""float32 CSR (count, terms): BM25 document rows. A row holds the same terms as the article's
TF-IDF row, so only its values are stored (`bm25.data.npy`), over the TF-IDF matrix's indices
(`bm25.npz`, a whole matrix, in versions written before they were memory-mapped)."""
BM25_VALUES = csr_files(BM25)[0]
BM25_MODEL = "bm25.json"
"""The BM25 idf weights and average length."""


@dataclass(frozen=True)
class Bm25Part:
    """The BM25 of one version, over its TF-IDF vocabulary."""

    source: Bm25Model | Path
    """The model, or its file, read when first needed (`model`)."""
    documents: sp.csr_matrix
    tfidf: TfidfPart

    @cached_property
    def model(self) -> Bm25Model:
        """The idf weights and average length: only drafts and live articles need them."""
        if isinstance(self.source, Bm25Model):
            return self.source
        model = Bm25Model.load(self.source)
        if len(model.idf) != self.documents.shape[1]:
            raise ValueError(f"{self.source.name} does not hold the BM25 matrix's terms")
        return model

    @cached_property
    def queries(self) -> sp.csr_matrix:
        """The articles' coverage queries (`coverage_queries`)."""
        return coverage_queries(self.documents)

    @cached_property
    def distinct_terms(self) -> sp.csr_matrix:
        """The articles' plain BM25 queries: 1 for each of their distinct terms."""
        documents = self.documents
        return sp.csr_matrix(
            (np.ones(documents.nnz, dtype=np.float32), documents.indices, documents.indptr),
            shape=documents.shape,
        )


class Bm25Share(RankingSignal):
    name = "bm25"
    # Versions built before BM25 was a signal do not name it.
    parameters: ClassVar[Mapping[str, float]] = {"bm25": 0.0}
    files = (BM25_VALUES, BM25_MODEL)
    files_before = (f"{BM25}.npz",)
    strategy = "bm25"

    def weight(self, weights: FusionWeights) -> float:
        return weights["bm25"]

    def fit(self, catalog: Catalog, weights: FusionWeights, fitted: Mapping[str, Any]) -> Bm25Part:
        tfidf: TfidfPart = fitted[TfidfCosine.name]
        assert tfidf.frequencies is not None, "a just-fitted TF-IDF keeps its term counts"
        model, documents = Bm25Model.fit(tfidf.frequencies, catalog.block)
        return Bm25Part(model, documents, tfidf)

    def update(self, part: Bm25Part, change: CatalogChange, updated: Mapping[str, Any]) -> Bm25Part:
        """The served rows reused; the others weighed with the idf and average length of the last
        full fit (terms the TF-IDF's update appended get the idf of their frequency now)."""
        tfidf: TfidfPart = updated[TfidfCosine.name]
        assert tfidf.frequencies is not None, "an updated TF-IDF keeps its new rows' term counts"
        model = part.model.extended(tfidf.frequencies, len(change.reused))
        fresh = model.documents(tfidf.frequencies, change.block)
        documents = merge_rows(part.documents, change.reused, fresh, tfidf.matrix.shape[1])
        return Bm25Part(model, documents, tfidf)

    def save(self, part: Bm25Part, directory: Path) -> None:
        save_csr_values(part.documents, directory, BM25, like=part.tfidf.matrix)
        part.model.save(directory / BM25_MODEL)

    def load(self, directory: Path, count: int, loaded: Mapping[str, Any]) -> Bm25Part:
        tfidf: TfidfPart = loaded[TfidfCosine.name]
        if (directory / BM25_VALUES).is_file():
            documents = load_csr_values(directory, BM25, like=tfidf.matrix)
        else:
            documents = load_matrix(directory, BM25)
        if documents.shape != tfidf.matrix.shape:
            raise ValueError(f"{BM25}'s matrix disagrees with the TF-IDF's shape")
        return Bm25Part(directory / BM25_MODEL, documents, tfidf)

    def absent(self, count: int, loaded: Mapping[str, Any]) -> Bm25Part:
        tfidf: TfidfPart = loaded[TfidfCosine.name]
        documents = sp.csr_matrix(tfidf.matrix.shape, dtype=np.float32)
        return Bm25Part(Bm25Model.empty(tfidf.matrix.shape[1]), documents, tfidf)

    def rows(self, part: Bm25Part) -> sp.csr_matrix:
        return part.documents

    def prepare(self, part: Bm25Part, text: str) -> sp.csr_matrix:
        _, frequencies = part.tfidf.text_rows(text)
        return part.model.documents(frequencies)

    def stack(self, part: Bm25Part, prepared: Sequence[sp.csr_matrix]) -> sp.csr_matrix:
        return stack_rows(list(prepared), part.documents.shape[1])

    def query(self, part: Bm25Part, features: sp.csr_matrix, row: int) -> sp.csr_matrix:
        return coverage_queries(features[row])

    def pairs(
        self,
        part: Bm25Part,
        side: Side,
        sources: NDArray[np.int64],
        candidates: Candidates,
        weights: FusionWeights,
    ) -> NDArray[np.float32]:
        documents = side.features[self.name]
        return pair_similarities(part.queries, sources, candidates.rows, documents=documents)

    def scores(
        self, part: Bm25Part, source: Source, candidates: Candidates, weights: FusionWeights
    ) -> NDArray[np.float32]:
        documents = candidates.side.features[self.name]
        return query_similarities(documents, source.queries[self.name], candidates.rows)

    def explain(
        self,
        part: Bm25Part,
        source: tuple[Side, int],
        target: tuple[Side, int],
        weights: FusionWeights,
    ) -> dict[str, Any]:
        (source_side, source_row), (target_side, target_row) = source, target
        query = coverage_queries(source_side.features[self.name][source_row])
        share = query.multiply(target_side.features[self.name][target_row]).sum()
        return {"bm25": round(float(share), 4)}

    def reasons(self, why: Mapping[str, Any]) -> list[Reason]:
        return [
            Reason(
                f"its words covered {100 * why['bm25']:.0f}%",
                "BM25 share: how much of this article's distinctive words the suggestion covers",
            )
        ]

    def alone(self, part: Bm25Part, side: Side, sources: NDArray[np.int64]) -> NDArray[np.float32]:
        """BM25 of each source's distinct terms against every article of the version."""
        dense: NDArray[np.float32] = (part.distinct_terms[sources] @ part.documents.T).toarray()
        return dense
