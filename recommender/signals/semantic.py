"""The semantic cosine: how close two articles' meanings are (the cosine of their L2-normalised
embeddings). It is how candidates are found, so it scores a pair with the cosine the vector
search measured; it weighs 1 and stores nothing beyond the version's vectors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from recommender.ranking import FusionWeights
from recommender.signals.base import Candidates, RankingSignal, Reason, Side, Source


class SemanticCosine(RankingSignal):
    name = "semantic"
    parameters: ClassVar[Mapping[str, float]] = {}

    def weight(self, weights: FusionWeights) -> float:
        return 1.0

    def pairs(
        self,
        part: Any,
        side: Side,
        sources: NDArray[np.int64],
        candidates: Candidates,
        weights: FusionWeights,
    ) -> NDArray[np.float32]:
        return candidates.cosines

    def scores(
        self, part: Any, source: Source, candidates: Candidates, weights: FusionWeights
    ) -> NDArray[np.float32]:
        return candidates.cosines

    def reasons(self, why: Mapping[str, Any]) -> list[Reason]:
        return [
            Reason(
                f"semantic {why['semantic']:.2f}",
                "Semantic similarity: how close the two stories' meanings are (cosine of their "
                "embeddings, 1 = the same)",
            )
        ]

    def explain(
        self, part: Any, source: tuple[Side, int], target: tuple[Side, int], weights: FusionWeights
    ) -> dict[str, Any]:
        (source_side, source_row), (target_side, target_row) = source, target
        cosine = source_side.vectors[source_row] @ target_side.vectors[target_row]
        return {"semantic": round(float(cosine), 4)}
