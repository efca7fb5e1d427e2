"""A toy ranking signal, to show that a signal is one module plus its registration: how alike
two articles' lengths are, min / max of their lexical texts' term counts (0..1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from recommender.ranking import FusionWeights
from recommender.signals.base import (
    Candidates,
    Catalog,
    RankingSignal,
    Reason,
    Side,
    Source,
)
from recommender.tfidf import term_counts

LENGTHS = "lengths.npy"


def length_ratio(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """min / max of two lengths; 0 where either is unknown (NaN) or both are 0."""
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.minimum(a, b) / np.maximum(a, b), nan=0.0)


@dataclass(frozen=True)
class LengthPart:
    lengths: NDArray[np.float64]
    """Term count of each article's lexical text; NaN in a version built without the signal."""
    present: bool = True


class LengthRatio(RankingSignal):
    name = "length"
    parameters: ClassVar[Mapping[str, float]] = {"length_weight": 0.5}
    files = (LENGTHS,)
    strategy = "length"

    def weight(self, weights: FusionWeights) -> float:
        return weights["length_weight"]

    def fit(
        self, catalog: Catalog, weights: FusionWeights, fitted: Mapping[str, Any]
    ) -> LengthPart:
        terms = catalog.terms
        texts = np.repeat(np.arange(len(terms.lengths)), terms.lengths)
        return LengthPart(np.bincount(texts, terms.counts, len(terms.lengths)).astype(np.float64))

    def save(self, part: LengthPart, directory: Path) -> None:
        np.save(directory / LENGTHS, part.lengths, allow_pickle=False)

    def load(self, directory: Path, count: int, loaded: Mapping[str, Any]) -> LengthPart:
        lengths = np.load(directory / LENGTHS, allow_pickle=False)
        if lengths.shape != (count,):
            raise ValueError(f"{LENGTHS} holds {lengths.shape}, not {count} lengths")
        return LengthPart(lengths)

    def absent(self, count: int, loaded: Mapping[str, Any]) -> LengthPart:
        return LengthPart(np.full(count, np.nan), present=False)

    def rows(self, part: LengthPart) -> NDArray[np.float64]:
        return part.lengths

    def prepare(self, part: LengthPart, text: str) -> NDArray[np.float64]:
        length = sum(term_counts(text).values()) if part.present else np.nan
        return np.array([length], np.float64)

    def stack(self, part: LengthPart, prepared: Sequence[NDArray[np.float64]]) -> Any:
        return np.concatenate(prepared) if prepared else np.zeros(0)

    def query(self, part: LengthPart, features: NDArray[np.float64], row: int) -> float:
        return float(features[row])

    def pairs(
        self,
        part: LengthPart,
        side: Side,
        sources: NDArray[np.int64],
        candidates: Candidates,
        weights: FusionWeights,
    ) -> NDArray[np.float64]:
        lengths = side.features[self.name]
        return length_ratio(lengths[sources][:, None], self._lengths(candidates))

    def scores(
        self, part: LengthPart, source: Source, candidates: Candidates, weights: FusionWeights
    ) -> NDArray[np.float64]:
        return length_ratio(np.asarray(source.queries[self.name]), self._lengths(candidates))

    def _lengths(self, candidates: Candidates) -> NDArray[np.float64]:
        lengths: NDArray[np.float64] = candidates.side.features[self.name]
        return lengths[np.maximum(candidates.rows, 0)]

    def explain(
        self,
        part: LengthPart,
        source: tuple[Side, int],
        target: tuple[Side, int],
        weights: FusionWeights,
    ) -> dict[str, Any]:
        (source_side, source_row), (target_side, target_row) = source, target
        a = source_side.features[self.name][source_row : source_row + 1]
        b = target_side.features[self.name][target_row : target_row + 1]
        return {"length_ratio": round(float(length_ratio(a, b)[0]), 4)}

    def reasons(self, why: Mapping[str, Any]) -> list[Reason]:
        return [Reason(f"lengths alike {why['length_ratio']:.2f}", "min / max of the lengths")]

    def alone(
        self, part: LengthPart, side: Side, sources: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        lengths = side.features[self.name]
        return length_ratio(lengths[sources][:, None], lengths[None, :]).astype(np.float32)
