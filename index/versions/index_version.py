"""The files of one index version: writing them in a staging directory, and loading them.

vectors.npy            float32 (count, dimension), row i = article i
index.faiss            FAISS index over the same rows
cards.jsonl            one article card per row (everything but the body), and its columns
cards.*.npy            (`index.versions.card_table`: offsets, slug hashes, dates, sections...)
neighbours.npy         int32 (count, K): precomputed candidate rows, best first (-1 = none)
neighbour_scores.npy   float32 (count, K): their hybrid score for the row's article
...                    each ranking signal's files (`RankingSignal.files`: the TF-IDF's rows
                       and vocabulary, BM25's rows and model); a version written before a
                       signal existed has none of its files, and loads with a part of it that
                       scores nothing (`RankingSignal.absent`)
manifest.json          written last, with the checksum of every file above

Every array is memory-mapped on load (FAISS's own file too), so the workers of a host share one
copy of a version in the page cache; what a worker holds of its own stays small whatever the
catalog's size. Versions written before the card columns and the signals' `.npy` files (with
`RankingSignal.files_before`) still load, their cards mapped and the rest read into the
worker's memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from index.index_errors import CorruptVersionError
from index.versions.card_table import CARDS, COLUMN_FILES, CardTable, published_time, write_cards
from index.versions.manifest import MANIFEST_NAME, Manifest, describe_files
from index.versions.vector_index import IndexSpec, VectorIndex
from index.versions.version_store import VersionStore
from recommender.mapped_files import map_array
from recommender.ranking import FusionWeights, LabelColumn
from recommender.signals.base import Side
from recommender.signals.registry import SIGNALS, fusion_weights

VECTORS = "vectors.npy"
INDEX = "index.faiss"
NEIGHBOURS = "neighbours.npy"
NEIGHBOUR_SCORES = "neighbour_scores.npy"
DATA_FILES = [VECTORS, INDEX, CARDS, *COLUMN_FILES, NEIGHBOURS, NEIGHBOUR_SCORES]
"""The files every version has, whatever its signals."""


@dataclass(frozen=True, slots=True)
class VersionContent:
    """What a build produced, ready to be written."""

    cards: Iterable[dict[str, Any]]
    """By row; read once, so a stream of them will do."""
    vectors: NDArray[np.float32]
    index: VectorIndex
    neighbour_ids: NDArray[np.int32]
    neighbour_scores: NDArray[np.float32]
    signals: Mapping[str, Any]
    """Each registered ranking signal's part (`RankingSignal.fit`), by name."""


def write_version(
    directory: Path, content: VersionContent, manifest: Manifest, extra: Sequence[str] = ()
) -> Manifest:
    """Write all files into `directory`; the manifest, with checksums (also of the files
    `extra` the caller wrote there, e.g. `text_hashes.npy`), goes last."""
    np.save(directory / VECTORS, content.vectors, allow_pickle=False)
    content.index.save(directory / INDEX)
    with (directory / CARDS).open("wb") as handle:
        columns = write_cards(content.cards, handle)
    if len(columns.published) != manifest.count:
        raise ValueError(f"{len(columns.published)} cards for {manifest.count} articles")
    columns.save(directory)
    np.save(directory / NEIGHBOURS, content.neighbour_ids, allow_pickle=False)
    np.save(directory / NEIGHBOUR_SCORES, content.neighbour_scores, allow_pickle=False)
    names = [*DATA_FILES, *extra]
    for signal in SIGNALS:
        signal.save(content.signals[signal.name], directory)
        names += signal.files
    complete = Manifest(**{**_fields(manifest), "files": describe_files(directory, names)})
    (directory / MANIFEST_NAME).write_text(complete.to_json(), encoding="utf-8")
    return complete


def _fields(manifest: Manifest) -> dict[str, Any]:
    return {name: getattr(manifest, name) for name in manifest.__slots__}


def publication_times(cards: Sequence[dict[str, Any]]) -> NDArray[np.float64]:
    """Epoch seconds of each card's `published_at` (NaN where unknown)."""
    return np.array([published_time(card) for card in cards], dtype=np.float64)


@dataclass(frozen=True)
class IndexVersion:
    """A verified version, loaded for serving. Immutable once loaded."""

    path: Path | None
    """None for a version built in memory."""
    manifest: Manifest
    cards: CardTable
    vectors: NDArray[np.float32]
    index: VectorIndex
    neighbour_ids: NDArray[np.int32]
    neighbour_scores: NDArray[np.float32]
    signals: Mapping[str, Any]
    """Each registered ranking signal's part, by name."""

    @property
    def id(self) -> str:
        return self.manifest.version

    @property
    def size(self) -> int:
        return len(self.cards)

    @property
    def rows(self) -> Mapping[str, int]:
        """Slug -> row."""
        return self.cards.rows

    @property
    def published(self) -> NDArray[np.float64]:
        """Publication times as epoch seconds (NaN where unknown), by row."""
        return self.cards.columns.published

    @property
    def sections(self) -> LabelColumn:
        return self.cards.columns.sections

    @property
    def languages(self) -> LabelColumn:
        return self.cards.columns.languages

    @property
    def newest_first(self) -> NDArray[np.int64]:
        """Rows by publication time, newest first (unknown dates last)."""
        return self.cards.columns.newest

    @property
    def built_at(self) -> datetime:
        return datetime.fromisoformat(self.manifest.created_at).astimezone(UTC)

    @cached_property
    def weights(self) -> FusionWeights:
        """The parameters its neighbours were scored with (the signals' own where its manifest,
        written before them, names none)."""
        return fusion_weights(self.manifest.ranking)

    @cached_property
    def side(self) -> Side:
        """Its articles as the ranking signals score them."""
        features = {s.name: s.rows(self.signals[s.name]) for s in SIGNALS}
        return Side(self.vectors, self.published, features)

    def prepare(self, text: str) -> dict[str, Any]:
        """What each signal keeps of an article outside the version (a draft, a live article)
        with this lexical text, by signal name."""
        return {s.name: s.prepare(self.signals[s.name], text) for s in SIGNALS}

    @classmethod
    def load(cls, store: VersionStore, version: str, *, expected_model: str | None) -> IndexVersion:
        """Verify checksums and shapes, then load. Raises CorruptVersionError on any mismatch."""
        path, manifest = store.verified(version)
        if expected_model is not None and manifest.model != expected_model:
            raise CorruptVersionError(
                f"{version} was built with model {manifest.model!r}, "
                f"but this service is configured for {expected_model!r}"
            )
        try:
            vectors = map_array(path / VECTORS)
            neighbour_ids = map_array(path / NEIGHBOURS)
            neighbour_scores = map_array(path / NEIGHBOUR_SCORES)
            cards = CardTable.load(path, with_columns=COLUMN_FILES[0] in manifest.files)
            signals: dict[str, Any] = {}
            for signal in SIGNALS:
                if any(name in manifest.files for name in (*signal.files, *signal.files_before)):
                    signals[signal.name] = signal.load(path, manifest.count, signals)
                else:
                    signals[signal.name] = signal.absent(manifest.count, signals)
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptVersionError(f"{version}: cannot read its files ({exc})") from exc
        index = VectorIndex.load(path / INDEX, IndexSpec.from_dict(manifest.index))
        count = manifest.count
        if not (
            cards.columns.hold(count)
            and vectors.shape == (count, manifest.dimension)
            and index.size == count
            and neighbour_ids.shape == neighbour_scores.shape
            and len(neighbour_ids) == count
        ):
            raise CorruptVersionError(f"{version}: its files disagree on the number of articles")
        return cls(path, manifest, cards, vectors, index, neighbour_ids, neighbour_scores, signals)

    @classmethod
    def from_content(cls, content: VersionContent, manifest: Manifest) -> IndexVersion:
        """A version straight from a build, without files (used by the offline evaluation)."""
        return cls(
            path=None,
            manifest=manifest,
            cards=CardTable.of(content.cards),
            vectors=content.vectors,
            index=content.index,
            neighbour_ids=content.neighbour_ids,
            neighbour_scores=content.neighbour_scores,
            signals=content.signals,
        )
