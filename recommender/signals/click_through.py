"""Readers' clicks: how much more (or less) often than the slot average readers clicked an
article where it was suggested (`recommender.click_statistics`, docs/learning.md).

Unlike the other signals it stores nothing in a version and adds nothing at reindex (the
precomputed lists are what they were): its statistics come from the impression log and change
during the day, so a serving worker supplies them as the signal's part (`ClickPart`), and
the precomputed candidates are scored again when `clicks` weighs (`RECOMMENDER_CLICK_WEIGHT`).
Only the version's own articles have click evidence; live articles and drafts score 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from recommender.click_statistics import ClickStatistics
from recommender.ranking import FusionWeights
from recommender.signals.base import Candidates, RankingSignal, Reason, Side, Source

NAME = "clicks"
#: The features of a version's side (its rows have slugs the statistics know); live articles'
#: and drafts' are None.
VERSION_ROWS = "version rows"


@dataclass(frozen=True, slots=True)
class ClickPart:
    """The signal's part while serving: the statistics, and the slug of a version row."""

    statistics: ClickStatistics
    slug_of: Callable[[int], str]


class ClickThrough(RankingSignal):
    name = NAME
    parameters: ClassVar[Mapping[str, float]] = {NAME: 0.0}

    def weight(self, weights: FusionWeights) -> float:
        return weights[NAME]

    def rows(self, part: Any) -> Any:
        return VERSION_ROWS

    def stack(self, part: Any, prepared: Sequence[Any]) -> Any:
        return None

    def query(self, part: Any, features: Any, row: int) -> Any:
        """The source's slug, when it is one of the version's articles and clicks are known."""
        if not isinstance(part, ClickPart) or features != VERSION_ROWS:
            return None
        return part.slug_of(row)

    def scores(
        self, part: Any, source: Source, candidates: Candidates, weights: FusionWeights
    ) -> NDArray[np.float32]:
        scores = np.zeros(candidates.rows.shape, dtype=np.float32)
        if not weights[NAME] or not isinstance(part, ClickPart):
            return scores
        slug = source.queries[NAME]
        if slug is None or candidates.side.features.get(NAME) != VERSION_ROWS:
            return scores
        for at, row in enumerate(candidates.rows.tolist()):
            if row >= 0:
                scores[at] = part.statistics.score(slug, part.slug_of(row))
        return scores

    def explain(
        self, part: Any, source: tuple[Side, int], target: tuple[Side, int], weights: FusionWeights
    ) -> dict[str, Any]:
        (source_side, source_row), (target_side, target_row) = source, target
        known = source_side.features.get(NAME) == target_side.features.get(NAME) == VERSION_ROWS
        if not isinstance(part, ClickPart) or not known:
            return {}  # nothing to say: explanations stay as they were
        found = part.statistics.explained(part.slug_of(source_row), part.slug_of(target_row))
        if found is None:
            return {}  # nothing to say: explanations stay as they were
        return {
            NAME: {
                "click_rate": round(found.click_rate, 4),
                "lift": round(found.lift, 2),
                "impressions": round(found.impressions, 1),
                "score": round(found.score, 4),
                "per_pair": found.per_pair,
                "weight": weights[NAME],
            }
        }

    def reasons(self, why: Mapping[str, Any]) -> list[Reason]:
        found = why.get(NAME)
        if not found:
            return []
        readers = "readers of this article" if found["per_pair"] else "readers"
        return [
            Reason(
                f"{readers} clicked it {found['click_rate']:.1%} of the time, "
                f"{found['lift']:.1f}× the slot average",  # noqa: RUF001
                f"From the impression log, recent clicks counting most, over about "
                f"{found['impressions']:.0f} impressions"
                + ("" if found["per_pair"] else " in every list it was suggested in")
                + f"; click score {found['score']:+.2f} at weight {found['weight']:g}",
            )
        ]
