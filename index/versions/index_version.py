"""The files of one index version: writing them in a staging directory, and loading them.

vectors.npy            float32 (count, dimension), row i = article i (memory-mapped on load)
index.faiss            FAISS index over the same rows
cards.jsonl            one article card per row (everything but the body)
neighbours.npy         int32 (count, K): precomputed candidate rows, best first (-1 = none)
neighbour_scores.npy   float32 (count, K): their hybrid score for the row's article
...                    each ranking signal's files (`RankingSignal.files`: the TF-IDF's
                       lexical.npz and vocabulary.json, BM25's bm25.npz and bm25.json);
                       a version written before a signal existed has none of its files, and
                       loads with a part of it that scores nothing (`RankingSignal.absent`)
manifest.json          written last, with the checksum of every file above
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from index.index_errors import CorruptVersionError
from index.versions.manifest import MANIFEST_NAME, Manifest, describe_files
from index.versions.vector_index import IndexSpec, VectorIndex
from index.versions.version_store import VersionStore
from recommender.ranking import FusionWeights
from recommender.signals.base import Side
from recommender.signals.registry import SIGNALS, fusion_weights

VECTORS = "vectors.npy"
INDEX = "index.faiss"
CARDS = "cards.jsonl"
NEIGHBOURS = "neighbours.npy"
NEIGHBOUR_SCORES = "neighbour_scores.npy"
DATA_FILES = [VECTORS, INDEX, CARDS, NEIGHBOURS, NEIGHBOUR_SCORES]
"""The files every version has, whatever its signals."""


@dataclass(frozen=True, slots=True)
class VersionContent:
    """What a build produced, ready to be written."""

    cards: Sequence[dict[str, Any]]
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
        for card in content.cards:
            handle.write(orjson.dumps(card) + b"\n")
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
    return np.array(
        [
            datetime.fromisoformat(card["published_at"]).timestamp()
            if card.get("published_at")
            else np.nan
            for card in cards
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class IndexVersion:
    """A verified version, loaded for serving. Immutable once loaded."""

    path: Path | None
    """None for a version built in memory."""
    manifest: Manifest
    cards: list[dict[str, Any]]
    rows: dict[str, int]
    vectors: NDArray[np.float32]
    index: VectorIndex
    neighbour_ids: NDArray[np.int32]
    neighbour_scores: NDArray[np.float32]
    signals: Mapping[str, Any]
    """Each registered ranking signal's part, by name."""
    published: NDArray[np.float64]
    """Publication times as epoch seconds (NaN where unknown), by row."""

    @property
    def id(self) -> str:
        return self.manifest.version

    @property
    def size(self) -> int:
        return len(self.cards)

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
            # A plain ndarray view of the memory map: same pages, without np.memmap's
            # per-indexing overhead on the serving path.
            vectors = np.asarray(np.load(path / VECTORS, mmap_mode="r", allow_pickle=False))
            neighbour_ids = np.load(path / NEIGHBOURS, allow_pickle=False)
            neighbour_scores = np.load(path / NEIGHBOUR_SCORES, allow_pickle=False)
            cards = [orjson.loads(line) for line in (path / CARDS).read_bytes().splitlines()]
            signals: dict[str, Any] = {}
            for signal in SIGNALS:
                if any(name in manifest.files for name in signal.files):
                    signals[signal.name] = signal.load(path, manifest.count, signals)
                else:
                    signals[signal.name] = signal.absent(manifest.count, signals)
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptVersionError(f"{version}: cannot read its files ({exc})") from exc
        index = VectorIndex.load(path / INDEX, IndexSpec.from_dict(manifest.index))
        content = VersionContent(cards, vectors, index, neighbour_ids, neighbour_scores, signals)
        count = manifest.count
        if not (
            len(cards) == count
            and vectors.shape == (count, manifest.dimension)
            and index.size == count
            and neighbour_ids.shape == neighbour_scores.shape
            and len(neighbour_ids) == count
        ):
            raise CorruptVersionError(f"{version}: its files disagree on the number of articles")
        return cls.from_content(content, manifest, path)

    @classmethod
    def from_content(
        cls, content: VersionContent, manifest: Manifest, path: Path | None = None
    ) -> IndexVersion:
        """A version straight from a build, without files (used by the offline evaluation)."""
        cards = list(content.cards)
        return cls(
            path=path,
            manifest=manifest,
            cards=cards,
            rows={card["slug"]: row for row, card in enumerate(cards)},
            vectors=content.vectors,
            index=content.index,
            neighbour_ids=content.neighbour_ids,
            neighbour_scores=content.neighbour_scores,
            signals=content.signals,
            published=publication_times(cards),
        )
