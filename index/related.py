"""Related articles from a loaded version: a lookup of precomputed candidates, then ranking.

The same code serves the HTTP API, the CLI and the offline evaluation's `default` strategy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from index.version import IndexVersion
from recommender.errors import ArticleNotFound
from recommender.ranking import CandidateFacts, RelatedQuery, eligible, select_distinct

#: How many nearest rows a fallback search considers when filters starve the precomputed list.
FALLBACK_SEARCH = 1_000


@dataclass(frozen=True, slots=True)
class Suggestion:
    row: int
    score: float


class Recommender:
    """Ranks suggestions over one immutable index version."""

    def __init__(self, version: IndexVersion) -> None:
        self.version = version

    @cached_property
    def facts(self) -> CandidateFacts:
        cards = self.version.cards
        return CandidateFacts(
            sections=[card.get("section") for card in cards],
            languages=[card.get("language") for card in cards],
            published=self.version.published,
        )

    @cached_property
    def _newest_first(self) -> NDArray[np.int64]:
        published = np.nan_to_num(self.version.published, nan=-np.inf)
        return np.argsort(-published, kind="stable").astype(np.int64)

    def row_of(self, slug: str) -> int:
        row = self.version.rows.get(slug)
        if row is None:
            raise ArticleNotFound(slug)
        return row

    def related(self, slug: str, query: RelatedQuery, now: float | None = None) -> list[Suggestion]:
        """Suggestions for an indexed article; never the article itself."""
        row = self.row_of(slug)
        ids = self.version.neighbour_ids[row].astype(np.int64)
        scores = self.version.neighbour_scores[row]
        source = np.asarray(self.version.vectors[row])
        return self._rank(ids, scores, source, query, {row}, now)

    def related_to_vector(
        self, vector: NDArray[np.float32], query: RelatedQuery, now: float | None = None
    ) -> list[Suggestion]:
        """Suggestions for text that is not in the index (an unsaved draft)."""
        scores, ids = self.version.index.search(vector[None, :], self.version.manifest.neighbours)
        return self._rank(ids[0], scores[0], vector, query, set(), now)

    def _rank(
        self,
        ids: NDArray[np.int64],
        scores: NDArray[np.float32],
        source: NDArray[np.float32],
        query: RelatedQuery,
        own_rows: set[int],
        now: float | None,
    ) -> list[Suggestion]:
        moment = time.time() if now is None else now
        excluded = frozenset(own_rows | {self.version.rows[s] for s in query.exclude if s in self.version.rows})
        picks = self._pick(ids, scores, source, query, excluded, moment)
        if len(picks) < query.limit:
            picks = self._fill(picks, source, query, excluded, moment)
        return [Suggestion(row, score) for row, score in picks]

    def _pick(
        self,
        ids: NDArray[np.int64],
        scores: NDArray[np.float32],
        source: NDArray[np.float32],
        query: RelatedQuery,
        excluded: frozenset[int],
        now: float,
    ) -> list[tuple[int, float]]:
        keep = eligible(ids, self.facts, query, excluded_rows=excluded, now=now)
        return select_distinct(
            ids[keep], scores[keep], self.version.vectors, source, query.limit
        )

    def _fill(
        self,
        picks: list[tuple[int, float]],
        source: NDArray[np.float32],
        query: RelatedQuery,
        excluded: frozenset[int],
        now: float,
    ) -> list[tuple[int, float]]:
        """Keep a list full when filters starve it: a wider search, then the newest articles."""
        taken = excluded | {row for row, _ in picks}
        wide_scores, wide_ids = self.version.index.search(source[None, :], FALLBACK_SEARCH)
        picks = picks + self._pick(
            wide_ids[0], wide_scores[0], source, query, frozenset(taken), now
        )[: query.limit - len(picks)]
        if len(picks) < query.limit:
            taken = excluded | {row for row, _ in picks}
            newest = self._newest_first
            keep = eligible(newest, self.facts, query, excluded_rows=frozenset(taken), now=now)
            for row in newest[keep][: query.limit - len(picks)].tolist():
                picks.append((row, float(self.version.vectors[row] @ source)))
        return picks

    def item(self, suggestion: Suggestion) -> dict[str, Any]:
        """The public JSON shape of one suggestion."""
        card = self.version.cards[suggestion.row]
        return {
            "slug": card["slug"],
            "title": card["title"],
            "url": card["url"],
            "summary": card["summary"],
            "section": card["section"],
            "published_at": card["published_at"],
            "score": round(suggestion.score, 4),
        }

    def body(self, slug: str | None, suggestions: list[Suggestion]) -> dict[str, Any]:
        """The response body shared by `GET .../related`, `POST /v1/related` and the CLI."""
        return {
            "slug": slug,
            "index_version": self.version.id,
            "items": [self.item(s) for s in suggestions],
        }
