"""The live overlay: what changed since the served version was built, ready for ranking.

Rows of the catalog seen through an overlay are the version's rows `0..n-1` followed by the
live-upserted articles `n..n+m-1`. Version rows that were retracted, or replaced by a live
upsert of the same slug, are hidden.

Changes the version was built with (`Manifest.live_contained`: a live-only upsert the rebuild
carried, a retraction it applied) are skipped, so the overlay holds only what is newer than
the version and does not grow with the live store. An overlay is rebuilt after every live
change, so it keeps each live article prepared for ranking (card, vector, and what each ranking
signal keeps of it) by the sequence number of its change: the next overlay of the same version
reads and prepares only the changes made since, whatever the size of the live set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from index.state.live_store import LiveEntry, LiveHead, LiveStore
from index.versions.index_version import IndexVersion, publication_times
from recommender.articles import lexical_text, validate_record
from recommender.errors import InvalidRecord
from recommender.signals.base import Side
from recommender.signals.registry import SIGNALS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveArticle:
    """One live upsert, prepared for ranking over one version."""

    card: dict[str, Any]
    vector: NDArray[np.float32]
    features: Mapping[str, Any]
    """What each ranking signal keeps of it over the version, by signal name."""


@dataclass(frozen=True)
class LiveOverlay:
    """Live upserts and retractions applied on top of one version."""

    generation: str
    offset: int
    """The version's size: the first row number of a live article."""
    hidden: frozenset[int] = frozenset()
    retracted: frozenset[str] = frozenset()
    cards: list[dict[str, Any]] = field(default_factory=list)
    vectors: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    features: Mapping[str, Any] = field(default_factory=dict)
    """What each ranking signal keeps of the live articles, by signal name."""
    published: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    rows: dict[str, int] = field(default_factory=dict)
    version_id: str = ""
    prepared: Mapping[int, LiveArticle] = field(default_factory=dict)
    """The live articles by the sequence number of their change (reused by the next overlay)."""

    @classmethod
    def empty(cls, version: IndexVersion) -> LiveOverlay:
        return cls._assemble(version, [], {}, "0")

    @classmethod
    def read(
        cls, version: IndexVersion, live: LiveStore, previous: LiveOverlay | None = None
    ) -> LiveOverlay:
        """The overlay of the live store now, reusing what `previous` prepared for `version`."""
        generation = live.generation()  # first: a change made meanwhile moves it again
        contained = version.manifest.live_contained
        heads = [h for h in live.heads() if contained.get(h.slug) != h.seq]
        reusable = previous.prepared if previous and previous.version_id == version.id else {}
        prepared = {h.seq: reusable[h.seq] for h in heads if h.seq in reusable}
        missing = [h.seq for h in heads if not h.retracted and h.seq not in prepared]
        for entry in live.entries(missing) if missing else []:
            article = _prepare(version, entry)
            if article is not None:
                prepared[entry.seq] = article
        return cls._assemble(version, heads, prepared, generation)

    @classmethod
    def _assemble(
        cls,
        version: IndexVersion,
        heads: list[LiveHead],
        prepared: Mapping[int, LiveArticle],
        generation: str,
    ) -> LiveOverlay:
        """The overlay of the changes `heads`, whose upserts `prepared` holds (and only those)."""
        indexed = (version.cards.row_of(h.slug) for h in heads)
        hidden = {row for row in indexed if row is not None}
        articles = [prepared[h.seq] for h in heads if h.seq in prepared]
        cards = [article.card for article in articles]
        features = {
            s.name: s.stack(version.signals[s.name], [a.features[s.name] for a in articles])
            for s in SIGNALS
        }
        dimension = version.manifest.dimension
        return cls(
            generation=generation,
            offset=version.size,
            hidden=frozenset(hidden),
            retracted=frozenset(h.slug for h in heads if h.retracted),
            cards=cards,
            vectors=(
                np.stack([a.vector for a in articles])
                if articles
                else np.zeros((0, dimension), np.float32)
            ),
            features=features,
            published=publication_times(cards),
            rows={card["slug"]: version.size + i for i, card in enumerate(cards)},
            version_id=version.id,
            prepared=dict(prepared),
        )

    @property
    def size(self) -> int:
        return len(self.cards)

    @cached_property
    def side(self) -> Side:
        """The live articles as the ranking signals score them."""
        return Side(self.vectors, self.published, self.features)


def _prepare(version: IndexVersion, entry: LiveEntry) -> LiveArticle | None:
    if entry.model_id != version.manifest.model_id or entry.record is None:
        log.warning("live article %s was embedded with another model; reindex", entry.slug)
        return None
    try:
        article = validate_record(entry.record).article
    except InvalidRecord as exc:  # stored records were validated when put
        log.error("live article %s is unreadable: %s", entry.slug, exc)
        return None
    assert entry.vector is not None
    return LiveArticle(article.card(), entry.vector, version.prepare(lexical_text(article)))
