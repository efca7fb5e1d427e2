"""Related articles from a loaded version: a lookup of precomputed candidates, then ranking.

The same code serves the HTTP API, the CLI and the offline evaluation's `default` strategy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from index.neighbours import rank_by_fusion
from index.version import IndexVersion
from recommender.errors import ArticleNotFound
from recommender.ranking import (
    CandidateFacts,
    FusionWeights,
    RelatedQuery,
    ServingPolicy,
    eligible,
    freshness_penalty,
    select,
)
from recommender.tfidf import query_similarities

#: How many nearest rows a fallback search considers when filters starve the precomputed list.
FALLBACK_SEARCH = 1_000


@dataclass(frozen=True, slots=True)
class _Source:
    """What ranking needs to know about the article suggestions are for."""

    vector: NDArray[np.float32]
    lexical: sp.csr_matrix
    published: float
    rows: frozenset[int]
    """Its own rows in the catalog (none for a draft)."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    row: int
    score: float


class Recommender:
    """Ranks suggestions over one immutable index version."""

    def __init__(self, version: IndexVersion, policy: ServingPolicy | None = None) -> None:
        self.version = version
        self.policy = policy or ServingPolicy()

    @cached_property
    def facts(self) -> CandidateFacts:
        cards = self.version.cards
        return CandidateFacts(
            sections=[card.get("section") for card in cards],
            languages=[card.get("language") for card in cards],
            published=self.version.published,
        )

    @cached_property
    def _half_lives(self) -> NDArray[np.float64]:
        """Each row's freshness half-life in days (NaN: no freshness penalty)."""
        default = self.policy.freshness_half_life_days
        by_section = self.policy.section_half_life_days
        values = [by_section.get(section or "", default) for section in self.facts.sections]
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    @cached_property
    def _newest_first(self) -> NDArray[np.int64]:
        published = np.nan_to_num(self.version.published, nan=-np.inf)
        return np.argsort(-published, kind="stable").astype(np.int64)

    def row_of(self, slug: str) -> int:
        row = self.version.rows.get(slug)
        if row is None:
            raise ArticleNotFound(slug)
        return row

    @cached_property
    def weights(self) -> FusionWeights:
        """The fusion weights this version's neighbours were scored with."""
        return FusionWeights(**self.version.manifest.ranking)

    def related(self, slug: str, query: RelatedQuery, now: float | None = None) -> list[Suggestion]:
        """Suggestions for an indexed article; never the article itself."""
        row = self.row_of(slug)
        source = _Source(
            vector=np.asarray(self.version.vectors[row]),
            lexical=self.version.lexical[row],
            published=float(self.version.published[row]),
            rows=frozenset({row}),
        )
        ids = self.version.neighbour_ids[row].astype(np.int64)
        return self._rank(source, ids, self.version.neighbour_scores[row], query, now)

    def related_to_draft(
        self, vector: NDArray[np.float32], text: str, query: RelatedQuery, now: float | None = None
    ) -> list[Suggestion]:
        """Suggestions for text that is not in the index (an unsaved draft, dated now)."""
        moment = time.time() if now is None else now
        source = _Source(vector, self.version.tfidf.transform([text]), moment, frozenset())
        ids, scores = self._search(source, self.version.manifest.neighbours)
        return self._rank(source, ids, scores, query, moment)

    def _search(self, source: _Source, size: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The `size` nearest rows by vector, re-scored with the hybrid score."""
        semantic, ids = self.version.index.search(source.vector[None, :], size)
        lexical = query_similarities(self.version.lexical, source.lexical, ids[0])
        return rank_by_fusion(
            ids[0],
            semantic[0],
            lexical,
            np.asarray(source.published),
            self.version.published,
            self.weights,
            size,
        )

    def _rank(
        self,
        source: _Source,
        ids: NDArray[np.int64],
        scores: NDArray[np.float32],
        query: RelatedQuery,
        now: float | None,
    ) -> list[Suggestion]:
        moment = time.time() if now is None else now
        rows = self.version.rows
        excluded = source.rows | {rows[slug] for slug in query.exclude if slug in rows}
        picks = self._pick(ids, scores, source.vector, query, excluded, moment)
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
        rows, ranked = ids[keep], scores[keep]
        if self.policy.freshness_half_life_days or self.policy.section_half_life_days:
            ranked = ranked - freshness_penalty(
                self.version.published[rows],
                self._half_lives[rows],
                now,
                self.policy.freshness_weight,
            )
        return select(
            rows,
            ranked,
            self.version.vectors,
            source,
            query.limit,
            diversity=self.policy.diversity,
            near_duplicate=self.policy.near_duplicate,
        )

    def _fill(
        self,
        picks: list[tuple[int, float]],
        source: _Source,
        query: RelatedQuery,
        excluded: frozenset[int],
        now: float,
    ) -> list[tuple[int, float]]:
        """Keep a list full when filters starve it: a wider search, then the newest articles."""
        taken = excluded | {row for row, _ in picks}
        wide_ids, wide_scores = self._search(source, FALLBACK_SEARCH)
        picks = (
            picks
            + self._pick(wide_ids, wide_scores, source.vector, query, frozenset(taken), now)[
                : query.limit - len(picks)
            ]
        )
        if len(picks) < query.limit:
            taken = excluded | {row for row, _ in picks}
            newest = self._newest_first
            keep = eligible(newest, self.facts, query, excluded_rows=frozenset(taken), now=now)
            for row in newest[keep][: query.limit - len(picks)].tolist():
                picks.append((row, float(self.version.vectors[row] @ source.vector)))
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
