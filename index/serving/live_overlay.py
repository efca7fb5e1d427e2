"""The live overlay: what changed since the served version was built, ready for ranking.

Rows of the catalog seen through an overlay are the version's rows `0..n-1` followed by the
live-upserted articles `n..n+m-1`. Version rows that were retracted, or replaced by a live
upsert of the same slug, are hidden.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from index.state.live_store import LiveEntry
from index.versions.index_version import IndexVersion, publication_times
from recommender.articles import lexical_text, validate_record
from recommender.errors import InvalidRecord

log = logging.getLogger(__name__)


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
    lexical: sp.csr_matrix = None
    published: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    rows: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, version: IndexVersion) -> LiveOverlay:
        return cls.build(version, [], "0")

    @classmethod
    def build(
        cls, version: IndexVersion, entries: Sequence[LiveEntry], generation: str
    ) -> LiveOverlay:
        hidden: set[int] = set()
        retracted: set[str] = set()
        cards: list[dict[str, Any]] = []
        vectors: list[NDArray[np.float32]] = []
        texts: list[str] = []
        for entry in entries:
            row = version.rows.get(entry.slug)
            if row is not None:
                hidden.add(row)
            if entry.retracted:
                retracted.add(entry.slug)
                continue
            if entry.model_id != version.manifest.model_id or entry.record is None:
                log.warning("live article %s was embedded with another model; reindex", entry.slug)
                continue
            try:
                article = validate_record(entry.record).article
            except InvalidRecord as exc:  # stored records were validated when put
                log.error("live article %s is unreadable: %s", entry.slug, exc)
                continue
            assert entry.vector is not None
            cards.append(article.card())
            vectors.append(entry.vector)
            texts.append(lexical_text(article))
        dimension = version.manifest.dimension
        return cls(
            generation=generation,
            offset=version.size,
            hidden=frozenset(hidden),
            retracted=frozenset(retracted),
            cards=cards,
            vectors=np.stack(vectors) if vectors else np.zeros((0, dimension), np.float32),
            lexical=version.tfidf.transform(texts),
            published=publication_times(cards),
            rows={card["slug"]: version.size + i for i, card in enumerate(cards)},
        )

    @property
    def size(self) -> int:
        return len(self.cards)
