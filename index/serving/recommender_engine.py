"""Related articles from a loaded version and its live overlay: a lookup of precomputed
candidates (plus the few live articles, scored on the spot), then ranking. What the candidates
leave empty is filled by a wider search and the newest articles, or, given a fallback chain
(`recommender.fallbacks`), by its popular and newest steps, each suggestion with its reason.

The same code serves the HTTP API, the CLI and the offline evaluation's `default` strategy.
"""

from __future__ import annotations

import bisect
import copy
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from index.serving.live_overlay import LiveOverlay
from index.versions.index_version import IndexVersion
from index.versions.neighbours import rank_by_fusion
from recommender.click_statistics import ClickStatistics
from recommender.errors import ArticleNotFound
from recommender.fallbacks import Fallbacks, Reason
from recommender.overrides import Overrides, Pin, apply_pins
from recommender.ranking import (
    AppendedRows,
    CandidateFacts,
    Column,
    FusionWeights,
    RelatedQuery,
    ServingPolicy,
    eligible,
    freshness_penalty,
    select,
)
from recommender.signals.base import Candidates, Side, Source
from recommender.signals.click_through import NAME as CLICKS
from recommender.signals.click_through import ClickPart
from recommender.signals.registry import candidate_scores, explanation, source_queries

_WORD = re.compile(r"\w+")
#: How many nearest rows a fallback search considers when filters starve the precomputed list.
FALLBACK_SEARCH = 1_000
#: Rows taken at a time from the newest-first order (a search, a starved list).
_NEWEST_BLOCK = 1_024
#: Version rows whose slugs the click signal keeps at hand (about 100 bytes each).
SLUGS_REMEMBERED = 100_000
#: Cards whose public fields a recommender keeps decoded: the ones shown most (a few MB).
ITEMS_REMEMBERED = 4096
#: The fields of a card that a suggestion shows, in the order of the answer.
ITEM_FIELDS = ("slug", "title", "url", "image", "summary", "section", "published_at")


class _Source(Source):
    """The article suggestions are for, as ranking and its filters see it."""

    def __init__(
        self,
        slug: str | None,
        rows: frozenset[int],
        vector: NDArray[np.float32],
        published: float,
        queries: Callable[[], Mapping[str, Any]],
        section: int | None = None,
    ) -> None:
        super().__init__(vector, published, queries)
        self.slug = slug
        """None for a draft."""
        self.rows = rows
        """Its own rows in the catalog (none for a draft)."""
        self.section = section
        """Its section's code in `CandidateFacts.sections` (None for a draft)."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    row: int
    score: float
    pinned: bool = False
    """Put at its slot by an editor's pin."""
    reason: Reason | None = None
    """Why it is in a list ranked with a fallback chain (None without one)."""


class _Cards(Sequence[dict[str, Any]]):
    """The version's cards followed by the live articles' (a view: neither is copied)."""

    def __init__(self, version: Sequence[dict[str, Any]], live: Sequence[dict[str, Any]]) -> None:
        self._version = version
        self._live = live

    def __len__(self) -> int:
        return len(self._version) + len(self._live)

    @overload
    def __getitem__(self, row: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, row: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, row: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        offset = len(self._version)
        return self._version[row] if row < offset else self._live[row - offset]


class Recommender:
    """Ranks suggestions over one immutable index version seen through a live overlay, with
    the editors' overrides applied."""

    def __init__(
        self,
        version: IndexVersion,
        policy: ServingPolicy | None = None,
        overlay: LiveOverlay | None = None,
        overrides: Overrides | None = None,
        weights: FusionWeights | None = None,
        clicks: ClickStatistics | None = None,
    ) -> None:
        self.version = version
        self.policy = policy or ServingPolicy()
        self.overlay = overlay or LiveOverlay.empty(version)
        self.overrides = overrides or Overrides()
        self.vectors = AppendedRows(version.vectors, self.overlay.vectors)
        self._weights = weights
        """Fusion parameters other than the version's (an off-policy candidate): its
        precomputed candidates are then scored again with them."""
        self.clicks = clicks
        """The readers' clicks as last counted from the impression log (None: not known)."""

    def with_overrides(self, overrides: Overrides) -> Recommender:
        """The same recommender (sharing everything it computed) with other overrides."""
        changed = copy.copy(self)
        changed.overrides = overrides
        return changed

    def with_clicks(self, clicks: ClickStatistics) -> Recommender:
        """The same recommender with other click statistics."""
        changed = copy.copy(self)
        changed.clicks = clicks
        changed.__dict__.pop("_parts", None)
        return changed

    @property
    def cache_tag(self) -> str:
        """Changes whenever any answer may change: part of every cache key and ETag.

        That is a new version, a live change, an editor's override, a pin expiring, or, when
        clicks weigh, a new count of them.
        """
        overrides = self.overrides
        return (
            f"{self.version.id}.{self.overlay.generation}."
            f"{overrides.generation}.{overrides.epoch(time.time())}{self.clicks_tag}"
        )

    @property
    def clicks_tag(self) -> str:
        """The part of `cache_tag` that follows the click counts: empty unless clicks weigh."""
        if self.clicks is None or not self.weights[CLICKS]:
            return ""
        return f".{self.clicks.generation}"

    @cached_property
    def _parts(self) -> Mapping[str, Any]:
        """The signals' parts: the version's, and the click statistics when known."""
        if self.clicks is None:
            return self.version.signals
        return {**self.version.signals, CLICKS: ClickPart(self.clicks, self._slug_of)}

    @cached_property
    def _slug_of(self) -> Callable[[int], str]:
        """The slug of a version row, remembered for the rows asked for most (a card is parsed
        to find it; kept across click refreshes, which copy the recommender)."""
        cards = self.version.cards

        @functools.lru_cache(maxsize=SLUGS_REMEMBERED)
        def slug_of(row: int) -> str:
            return str(cards[row]["slug"])

        return slug_of

    @cached_property
    def _item_fields(self) -> Callable[[int], dict[str, Any]]:
        """The public fields of a row's card, remembered for the rows shown most (a version's
        card is otherwise decoded from its line of the mapped file each time); never changed
        by their readers, who copy them."""
        cards = self.cards

        @functools.lru_cache(maxsize=ITEMS_REMEMBERED)
        def fields(row: int) -> dict[str, Any]:
            card = cards[row]
            return {field: card.get(field) for field in ITEM_FIELDS}

        return fields

    @cached_property
    def cards(self) -> Sequence[dict[str, Any]]:
        if not self.overlay.size:
            return self.version.cards
        return _Cards(self.version.cards, self.overlay.cards)

    @cached_property
    def published(self) -> Column[np.float64]:
        if not self.overlay.size:
            return self.version.published
        return AppendedRows(self.version.published, self.overlay.published)

    @cached_property
    def facts(self) -> CandidateFacts:
        version, live = self.version, self.overlay.cards
        if not live:
            return CandidateFacts(version.sections, version.languages, self.published)
        return CandidateFacts(
            sections=version.sections.appended([card.get("section") for card in live]),
            languages=version.languages.appended([card.get("language") for card in live]),
            published=self.published,
        )

    @cached_property
    def _half_lives(self) -> NDArray[np.float64]:
        """The freshness half-life in days of each section code (NaN: no freshness penalty)."""
        default = self.policy.freshness_half_life_days
        by_section = self.policy.section_half_life_days

        def half_life(section: str | None) -> float:
            value = by_section.get(section or "", default)
            return np.nan if value is None else value

        return self.facts.sections.per_code(half_life)

    @cached_property
    def _newest_first(self) -> NDArray[np.int64]:
        """Rows by publication time, newest first, unknown dates last, ties in row order: the
        version's stored order with the live articles merged in."""
        newest = self.version.newest_first
        if not self.overlay.size:
            return newest
        published = self.version.published
        live = np.nan_to_num(self.overlay.published, nan=-np.inf)
        order = np.argsort(-live, kind="stable")

        def moment(at: int) -> float:
            return float(np.nan_to_num(published[newest[at]], nan=-np.inf))

        # Each live article goes after every version article at least as new: a binary search
        # (`moment` falls along the order) for the first one older.
        positions = [
            bisect.bisect_right(range(len(newest)), -live_moment, key=lambda at: -moment(at))
            for live_moment in live[order].tolist()
        ]
        return np.insert(newest, positions, order + self.overlay.offset)

    def _newest_blocks(self) -> Iterator[NDArray[np.int64]]:
        """`_newest_first`, a block of rows at a time."""
        newest = self._newest_first
        for start in range(0, len(newest), _NEWEST_BLOCK):
            yield np.asarray(newest[start : start + _NEWEST_BLOCK])

    def row_of(self, slug: str) -> int:
        """The article's catalog row; retracted and unknown slugs are not found."""
        row = self.overlay.rows.get(slug)
        if row is None and slug not in self.overlay.retracted:
            row = self.version.cards.row_of(slug)
            if row in self.overlay.hidden:
                row = None
        if row is None:
            raise ArticleNotFound(slug)
        return row

    def card(self, row: int) -> dict[str, Any]:
        # Versions built before articles had images hold cards without the key.
        return {"image": None, **self.cards[row]}

    def search(self, text: str, limit: int = 50) -> list[int]:
        """Rows of served articles whose slug starts with `text`, or whose title has a word
        starting with each word of `text`; newest first (no text: the newest articles)."""
        words = _WORD.findall(text.lower())
        prefix = "-".join(words)
        found: list[int] = []
        for block in self._newest_blocks():
            for row in block.tolist():
                if row in self.overlay.hidden:
                    continue
                card = self.cards[row]
                title = _WORD.findall(card["title"].lower())
                if card["slug"].startswith(prefix) or all(
                    any(t.startswith(w) for t in title) for w in words
                ):
                    found.append(row)
                    if len(found) == limit:
                        return found
        return found

    @property
    def weights(self) -> FusionWeights:
        """The parameters suggestions are scored with: the version's (those its neighbours were
        scored with at reindex) unless others were given."""
        return self.version.weights if self._weights is None else self._weights

    @property
    def weights_given(self) -> FusionWeights | None:
        """The parameters given in place of the version's (None: its own, and its precomputed
        lists served as they are)."""
        return self._weights

    def _side_of(self, row: int) -> tuple[Side, int]:
        """The side (the version's, or the live articles') that holds a catalog row, and the
        row there."""
        offset = self.overlay.offset
        if row < offset:
            return self.version.side, row
        return self.overlay.side, row - offset

    def related(
        self,
        slug: str,
        query: RelatedQuery,
        now: float | None = None,
        fallbacks: Fallbacks | None = None,
    ) -> list[Suggestion]:
        """Suggestions for an indexed article; never the article itself. With `fallbacks`,
        what the related candidates leave empty is filled by its steps, and each suggestion
        carries its `reason`."""
        row = self.row_of(slug)
        side, at = self._side_of(row)
        source = _Source(
            slug=slug,
            rows=frozenset({row}),
            vector=side.vectors[at],
            published=float(side.published[at]),
            queries=lambda: source_queries(self._parts, side.features, at),
            section=int(self.facts.sections.codes[row]),
        )
        if row < self.overlay.offset:
            ids = self.version.neighbour_ids[row].astype(np.int64)
            scores = self.version.neighbour_scores[row]
            if self._weights is not None:
                ids, scores = self._rescored(source, ids)
        else:
            ids, scores = self._search(source, self.version.manifest.neighbours)
        live_ids, live_scores = self._with_live(source, ids, scores)
        return self._rank(source, live_ids, live_scores, query, now, fallbacks)

    def explain(self, source_row: int, target_row: int) -> dict[str, Any]:
        """Why `target_row` is related to `source_row`: each signal's part of the hybrid score
        (`RankingSignal.explain`)."""
        return explanation(
            self._parts,
            self._side_of(source_row),
            self._side_of(target_row),
            self.weights,
        )

    def related_to_draft(
        self, vector: NDArray[np.float32], text: str, query: RelatedQuery, now: float | None = None
    ) -> list[Suggestion]:
        """Suggestions for text that is not in the index (an unsaved draft, dated now)."""
        moment = time.time() if now is None else now
        source = _Source(
            slug=None,
            rows=frozenset(),
            vector=vector,
            published=moment,
            queries=lambda: source_queries(self._parts, self.version.prepare(text), 0),
        )
        ids, scores = self._search(source, self.version.manifest.neighbours)
        live_ids, live_scores = self._with_live(source, ids, scores)
        return self._rank(source, live_ids, live_scores, query, moment)

    def _with_live(
        self, source: _Source, ids: NDArray[np.int64], scores: NDArray[np.float32]
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Merge the live articles, scored against the source, into its candidate list."""
        if not self.overlay.size:
            return ids, scores
        live = np.arange(self.overlay.size)
        candidates = Candidates(self.overlay.side, live, self.overlay.vectors @ source.vector)
        fused = candidate_scores(self._parts, source, candidates, self.weights)
        live_ids, live_scores = rank_by_fusion(live + self.overlay.offset, fused, len(live))
        merged_ids = np.concatenate([ids, live_ids])
        merged_scores = np.concatenate([scores, live_scores])
        order = np.argsort(-merged_scores, kind="stable")
        return merged_ids[order], merged_scores[order]

    def _rescored(
        self, source: _Source, ids: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The precomputed candidates `ids` (-1 pads) scored with `weights`, best first: which
        candidates a reindex with them would keep is not known without one."""
        cosines = self.version.vectors[np.where(ids >= 0, ids, 0)] @ source.vector
        candidates = Candidates(self.version.side, ids, cosines)
        fused = candidate_scores(self._parts, source, candidates, self.weights)
        return rank_by_fusion(ids, fused, len(ids))

    def _search(self, source: _Source, size: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The `size` nearest rows by vector, re-scored with the hybrid score."""
        semantic, ids = self.version.index.search(source.vector[None, :], size)
        candidates = Candidates(self.version.side, ids[0], semantic[0])
        fused = candidate_scores(self._parts, source, candidates, self.weights)
        return rank_by_fusion(ids[0], fused, size)

    def _rank(
        self,
        source: _Source,
        ids: NDArray[np.int64],
        scores: NDArray[np.float32],
        query: RelatedQuery,
        now: float | None,
        fallbacks: Fallbacks | None = None,
    ) -> list[Suggestion]:
        moment = time.time() if now is None else now
        excluded = (
            source.rows
            | self.overlay.hidden
            | set(self._rows_of(query.exclude))
            | set(self._rows_of(self.overrides.blocked(source.slug)))
        )
        picks = self._pick(ids, scores, source.vector, query, excluded, moment)
        reasons: dict[int, Reason] = {}  # the step that added a row (the rest are related)
        if fallbacks is not None:
            # The chain takes the wider search's place: beyond the candidates kept for the
            # source, the section's popular and newest articles serve readers better than
            # the thousandth nearest text.
            picks = self._fall_back(picks, fallbacks, source, query, excluded, moment, reasons)
        elif len(picks) < query.limit:
            picks = self._widen(picks, source, query, excluded, moment)
            picks = self._newest(picks, source, query, excluded, moment)
        pinned_rows: set[int] = set()
        if source.slug is not None:
            pins = self.overrides.pins_for(source.slug, moment)
            if pins:
                picks, pinned_rows = self._with_pins(picks, pins, source, query, excluded, moment)
        return [
            Suggestion(
                row, score, row in pinned_rows, self._reason(row, fallbacks, pinned_rows, reasons)
            )
            for row, score in picks
        ]

    @staticmethod
    def _reason(
        row: int, fallbacks: Fallbacks | None, pinned: set[int], reasons: dict[int, Reason]
    ) -> Reason | None:
        """An editor's pin is related, whichever step also found it."""
        if fallbacks is None:
            return None
        return "related" if row in pinned else reasons.get(row, "related")

    def _with_pins(
        self,
        picks: list[tuple[int, float]],
        pins: list[Pin],
        source: _Source,
        query: RelatedQuery,
        excluded: frozenset[int],
        now: float,
    ) -> tuple[list[tuple[int, float]], set[int]]:
        """Pinned articles in their slots, unless blocked, gone, or outside the filters; and
        the rows so pinned."""
        scores = dict(picks)
        pinned: list[tuple[int, tuple[int, float]]] = []
        for pin in pins:
            rows = np.array(self._rows_of(frozenset({pin.target})), dtype=np.int64)
            if not eligible(rows, self.facts, query, excluded_rows=excluded, now=now).any():
                continue
            row = int(rows[0])
            score = scores.get(row)
            if score is None:
                score = float(self.vectors[rows][0] @ source.vector)
            pinned.append((pin.slot, (row, score)))
        ranked = apply_pins(picks, pinned, query.limit, key=lambda pick: pick[0])
        return ranked, {row for _, (row, _) in pinned}

    def _rows_of(self, slugs: Iterable[str]) -> list[int]:
        """The rows of the served articles among `slugs`, in their order."""
        rows = []
        for slug in slugs:
            try:
                rows.append(self.row_of(slug))
            except ArticleNotFound:
                continue
        return rows

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
                self.published[rows],
                self._half_lives[self.facts.sections.codes[rows]],
                now,
                self.policy.freshness_weight,
            )
        return select(
            rows,
            ranked,
            self.vectors,
            source,
            query.limit,
            diversity=self.policy.diversity,
            near_duplicate=self.policy.near_duplicate,
        )

    def _widen(
        self,
        picks: list[tuple[int, float]],
        source: _Source,
        query: RelatedQuery,
        excluded: frozenset[int],
        now: float,
    ) -> list[tuple[int, float]]:
        """A list that filters starve, topped up from a wider search (still related)."""
        taken = excluded | {row for row, _ in picks}
        near_ids, near_scores = self._search(source, FALLBACK_SEARCH)
        wide_ids, wide_scores = self._with_live(source, near_ids, near_scores)
        return (
            picks
            + self._pick(wide_ids, wide_scores, source.vector, query, frozenset(taken), now)[
                : query.limit - len(picks)
            ]
        )

    def _fall_back(
        self,
        picks: list[tuple[int, float]],
        fallbacks: Fallbacks,
        source: _Source,
        query: RelatedQuery,
        excluded: frozenset[int],
        now: float,
        reasons: dict[int, Reason],
    ) -> list[tuple[int, float]]:
        """`picks` topped up by each step of the chain in turn; `reasons` gets each new row's
        step."""
        for step in fallbacks.steps:
            if len(picks) >= query.limit:
                break
            before = len(picks)
            section = source.section or 0
            label = self.facts.sections.labels[section]
            # A box limited to other sections has nothing of the source's: no need to look.
            own = not query.sections or label in query.sections
            if step == "popular":
                slugs = fallbacks.popular.get(label, ()) if own else ()
                picks = self._popular(picks, slugs, source, query, excluded, now)
            else:
                for only in (section, None) if own else (None,):
                    picks = self._newest(picks, source, query, excluded, now, only, distinct=True)
            reasons.update((row, step) for row, _ in picks[before:])
        return picks

    def _popular(
        self,
        picks: list[tuple[int, float]],
        slugs: Sequence[str],
        source: _Source,
        query: RelatedQuery,
        excluded: frozenset[int],
        now: float,
    ) -> list[tuple[int, float]]:
        """`picks` topped up with the first of `slugs` (most clicked first) that are served and
        pass every rule a related candidate passes."""
        rows = np.array(self._rows_of(slugs), dtype=np.int64)
        if not len(rows):
            return picks
        taken = frozenset(excluded | {row for row, _ in picks})
        keep = eligible(rows, self.facts, query, excluded_rows=taken, now=now)
        return picks + self._scored(self._distinct(picks, rows[keep], source, query.limit), source)

    def _newest(
        self,
        picks: list[tuple[int, float]],
        source: _Source,
        query: RelatedQuery,
        excluded: frozenset[int],
        now: float,
        section: int | None = None,
        distinct: bool = False,
    ) -> list[tuple[int, float]]:
        """`picks` topped up with the newest articles that pass the filters (of the section
        with that code, when given; with `distinct`, none a near-copy of the source or of
        another pick)."""
        if len(picks) >= query.limit:
            return picks
        taken = frozenset(excluded | {row for row, _ in picks})
        for block in self._newest_blocks():
            keep = eligible(block, self.facts, query, excluded_rows=taken, now=now)
            if section is not None:
                keep &= self.facts.sections.codes[block] == section
            rows = block[keep]
            if distinct:
                rows = self._distinct(picks, rows, source, query.limit)
            picks = picks + self._scored(rows[: query.limit - len(picks)], source)
            if len(picks) == query.limit:
                break
        return picks

    def _distinct(
        self,
        picks: list[tuple[int, float]],
        rows: NDArray[np.int64],
        source: _Source,
        limit: int,
    ) -> NDArray[np.int64]:
        """Of `rows`, in their order, those `select` would take after `picks` for a list of
        `limit`: none a near-copy of the source, of a pick, or of an earlier one of them."""
        earlier = np.array([row for row, _ in picks], dtype=np.int64)
        ordered = np.concatenate([earlier, rows])
        chosen = select(
            ordered,
            -np.arange(len(ordered), dtype=np.float32),  # their order, as scores
            self.vectors,
            source.vector,
            limit,
            near_duplicate=self.policy.near_duplicate,
        )
        kept = set(earlier.tolist())
        return np.array([row for row, _ in chosen if row not in kept], dtype=np.int64)

    def _scored(self, rows: NDArray[np.int64], source: _Source) -> list[tuple[int, float]]:
        """(row, cosine to the source) of rows that are not ranked by score."""
        return [
            (row, float(self.vectors[np.array([row])][0] @ source.vector)) for row in rows.tolist()
        ]

    def item(self, suggestion: Suggestion) -> dict[str, Any]:
        """The public JSON shape of one suggestion."""
        shown = self._item_fields(suggestion.row) | {"score": round(suggestion.score, 4)}
        if suggestion.reason is not None:
            shown["reason"] = suggestion.reason
        return shown

    def answer(
        self,
        slug: str,
        query: RelatedQuery,
        now: float | None = None,
        fallbacks: Fallbacks | None = None,
    ) -> dict[str, Any]:
        """The public body of a related request: what `GET /v1/articles/{slug}/related`, its
        HTML fragment, the CLI and the benchmarks all answer."""
        return self.body(slug, self.related(slug, query, now, fallbacks))

    def answer_draft(
        self, vector: NDArray[np.float32], text: str, query: RelatedQuery
    ) -> dict[str, Any]:
        """The public body of `POST /v1/related` for a draft's vector and lexical text."""
        return self.body(None, self.related_to_draft(vector, text, query))

    def body(self, slug: str | None, suggestions: list[Suggestion]) -> dict[str, Any]:
        """The response body of a related request, from its suggestions."""
        return {
            "slug": slug,
            "index_version": self.version.id,
            "items": [self.item(s) for s in suggestions],
        }
