"""The files of one index version: writing them in a staging directory, and loading them.

vectors.npy            float32 (count, dimension), row i = article i (memory-mapped on load)
index.faiss            FAISS index over the same rows
cards.jsonl            one article card per row (everything but the body)
neighbours.npy         int32 (count, K): precomputed candidate rows, best first (-1 = none)
neighbour_scores.npy   float32 (count, K): their hybrid score for the row's article
lexical.npz            float32 CSR (count, terms): TF-IDF rows of the articles
vocabulary.json        the TF-IDF terms and idf weights (to weigh drafts and new articles)
bm25.npz               float32 CSR (count, terms): BM25 document rows, same columns
bm25.json              the BM25 idf weights and average length (versions built before BM25 was
                       a signal have neither file: they load with a model that weighs nothing)
manifest.json          written last, with the checksum of every file above
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp
from numpy.typing import NDArray

from index.index_errors import CorruptVersionError
from index.versions.manifest import MANIFEST_NAME, Manifest, describe_files
from index.versions.vector_index import IndexSpec, VectorIndex
from index.versions.version_store import VersionStore
from recommender.bm25 import Bm25Model
from recommender.tfidf import TfidfModel, analyse, load_matrix, save_matrix

VECTORS = "vectors.npy"
INDEX = "index.faiss"
CARDS = "cards.jsonl"
NEIGHBOURS = "neighbours.npy"
NEIGHBOUR_SCORES = "neighbour_scores.npy"
LEXICAL = "lexical.npz"
VOCABULARY = "vocabulary.json"
BM25 = "bm25.npz"
BM25_MODEL = "bm25.json"
DATA_FILES = [
    VECTORS,
    INDEX,
    CARDS,
    NEIGHBOURS,
    NEIGHBOUR_SCORES,
    LEXICAL,
    VOCABULARY,
    BM25,
    BM25_MODEL,
]


@dataclass(frozen=True, slots=True)
class VersionContent:
    """What a build produced, ready to be written."""

    cards: Sequence[dict[str, Any]]
    vectors: NDArray[np.float32]
    index: VectorIndex
    neighbour_ids: NDArray[np.int32]
    neighbour_scores: NDArray[np.float32]
    lexical: sp.csr_matrix
    tfidf: TfidfModel
    bm25: sp.csr_matrix
    bm25_model: Bm25Model


def write_version(directory: Path, content: VersionContent, manifest: Manifest) -> Manifest:
    """Write all files into `directory`; the manifest, with checksums, goes last."""
    np.save(directory / VECTORS, content.vectors, allow_pickle=False)
    content.index.save(directory / INDEX)
    with (directory / CARDS).open("wb") as handle:
        for card in content.cards:
            handle.write(orjson.dumps(card) + b"\n")
    np.save(directory / NEIGHBOURS, content.neighbour_ids, allow_pickle=False)
    np.save(directory / NEIGHBOUR_SCORES, content.neighbour_scores, allow_pickle=False)
    save_matrix(content.lexical, directory / LEXICAL)
    content.tfidf.save(directory / VOCABULARY)
    save_matrix(content.bm25, directory / BM25)
    content.bm25_model.save(directory / BM25_MODEL)
    complete = Manifest(**{**_fields(manifest), "files": describe_files(directory, DATA_FILES)})
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
    lexical: sp.csr_matrix
    tfidf: TfidfModel
    bm25: sp.csr_matrix
    """BM25 document rows (all zero in versions built before BM25 was a signal)."""
    bm25_model: Bm25Model
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

    def text_rows(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """The TF-IDF rows and BM25 document rows of texts outside the version (drafts, live
        articles), in its vocabulary."""
        analysed = [analyse(text, bool(self.tfidf.name_boost)) for text in texts]
        rows, frequencies = self.tfidf.transform_terms(analysed)
        return rows, self.bm25_model.documents(frequencies)

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
            lexical = load_matrix(path / LEXICAL)
            tfidf = TfidfModel.load(path / VOCABULARY)
            if BM25 in manifest.files:
                bm25, bm25_model = load_matrix(path / BM25), Bm25Model.load(path / BM25_MODEL)
            else:
                bm25 = sp.csr_matrix(lexical.shape, dtype=np.float32)
                bm25_model = Bm25Model.empty(lexical.shape[1])
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptVersionError(f"{version}: cannot read its files ({exc})") from exc
        index = VectorIndex.load(path / INDEX, IndexSpec.from_dict(manifest.index))
        content = VersionContent(
            cards, vectors, index, neighbour_ids, neighbour_scores, lexical, tfidf, bm25, bm25_model
        )
        count = manifest.count
        if not (
            len(cards) == count
            and vectors.shape == (count, manifest.dimension)
            and index.size == count
            and neighbour_ids.shape == neighbour_scores.shape
            and len(neighbour_ids) == count
            and lexical.shape == (count, len(tfidf.vocabulary))
            and bm25.shape == lexical.shape
            and len(bm25_model.idf) == lexical.shape[1]
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
            lexical=content.lexical,
            tfidf=content.tfidf,
            bm25=content.bm25,
            bm25_model=content.bm25_model,
            published=publication_times(cards),
        )
