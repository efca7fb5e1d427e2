"""The read stage of a reindex, held compactly: of each article only its card (encoded) and the
hashes of its two texts, while the texts that later stages must still embed or analyse (those
the caches lack) wait in a `SpilledTexts`: in memory up to a budget, past it in a scratch file
of the data directory. So reading a catalog never holds its bodies, whatever its size.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import orjson

from index.state.embedding_cache import EmbeddingCache
from index.state.hashed_blobs import HashedBlobs
from index.state.term_count_cache import TermCountCache
from recommender.articles import Article, embedding_text, lexical_text, text_hash

SCRATCH_DIR = "reindex-scratch"
"""The data directory's scratch directory: made by a run, removed when it ends (or by the next
run, after a kill)."""
EMBEDDING = "embedding"
LEXICAL = "lexical"

#: Texts (hashes) -> those texts, in order: what the embedding and analysis stages read.
TextLookup = Callable[[Sequence[str]], list[str]]


@dataclass(frozen=True, slots=True)
class BlockSizes:
    """How much of a catalog each stage holds at once (tests make them tiny)."""

    rows: int = 2048
    """Articles per block: cache lookups, analyses read for the fit, vector searches."""
    spill_memory: int = 64 * 1024 * 1024
    """Characters of waiting texts held in memory before they go to the scratch file (as
    many bytes for ASCII text, up to twice as many for other text)."""


DEFAULT_BLOCKS = BlockSizes()


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One article as the stages after reading need it."""

    card: bytes
    """`Article.card()` as JSON."""
    embedding_hash: str
    lexical_hash: str


class EncodedCards(Sequence[dict[str, Any]]):
    """Cards held as JSON, decoded when read: a tenth of the memory of the dicts."""

    def __init__(self, encoded: list[bytes]) -> None:
        self._encoded = encoded

    def __len__(self) -> int:
        return len(self._encoded)

    @overload
    def __getitem__(self, at: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, at: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, at: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(at, slice):
            return [orjson.loads(card) for card in self._encoded[at]]
        decoded: dict[str, Any] = orjson.loads(self._encoded[at])
        return decoded


class SpilledTexts:
    """Texts by (kind, hash), kept in memory until they pass `budget` characters, then moved
    to a SQLite file in `directory` (committed in one transaction each time)."""

    def __init__(self, directory: Path, budget: int) -> None:
        self._directory = directory
        self._budget = budget
        self._waiting: dict[tuple[str, str], str] = {}
        self._size = 0
        self._file: HashedBlobs | None = None

    def put(self, kind: str, hashed: str, text: str) -> None:
        if (kind, hashed) not in self._waiting:
            self._waiting[kind, hashed] = text
            self._size += len(text)
        if self._size > self._budget:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            path = self._directory / "texts.sqlite3"
            self._file = HashedBlobs(path, "the reindex scratch file", "texts", "kind", "text")
        for kind in (EMBEDDING, LEXICAL):
            self._file.put_many(
                kind, ((h, text.encode()) for (k, h), text in self._waiting.items() if k == kind)
            )
        self._waiting.clear()
        self._size = 0

    def lookup(self, kind: str) -> TextLookup:
        """The texts of one kind by hash (each must have been put)."""

        def texts(hashes: Sequence[str]) -> list[str]:
            stored = self._file.get_many(kind, hashes) if self._file is not None else {}
            return [
                self._waiting[kind, h] if (kind, h) in self._waiting else stored[h].decode()
                for h in hashes
            ]

        return texts

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@contextmanager
def spilled_texts(data_dir: Path, budget: int) -> Iterator[SpilledTexts]:
    """A run's `SpilledTexts`, its file in the data directory's scratch directory: empty at the
    start (what a killed run left is removed) and removed at the end, whatever happens. The
    caller holds the reindex lock."""
    directory = data_dir / SCRATCH_DIR
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    spilled = SpilledTexts(directory, budget)
    try:
        yield spilled
    finally:
        spilled.close()
        shutil.rmtree(directory, ignore_errors=True)


class CatalogReader:
    """Makes `CatalogEntry`s of articles as they are read (`keep`), and puts aside the texts of
    those whose embedding (for `model_id`) or analysis (with `names` or not) the caches lack:
    all of them with `full`. Checks the caches a block of articles at a time."""

    def __init__(
        self,
        embeddings: EmbeddingCache,
        terms: TermCountCache,
        spilled: SpilledTexts,
        *,
        model_id: str,
        names: bool,
        full: bool,
        block: int,
    ) -> None:
        self._embeddings = embeddings
        self._terms = terms
        self._spilled = spilled
        self._model_id = model_id
        self._names = names
        self._full = full
        self._block = block
        self._pending: list[tuple[str, str, str, str]] = []

    def keep(self, article: Article) -> CatalogEntry:
        embedded, lexical = embedding_text(article), lexical_text(article)
        entry = CatalogEntry(orjson.dumps(article.card()), text_hash(embedded), text_hash(lexical))
        self._pending.append((entry.embedding_hash, embedded, entry.lexical_hash, lexical))
        if len(self._pending) >= self._block:
            self.flush()
        return entry

    def flush(self) -> None:
        """Put aside the waiting texts the caches lack (call once after the last article)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        embedding_hashes = [item[0] for item in pending]
        lexical_hashes = [item[2] for item in pending]
        vectors = set() if self._full else self._embeddings.known(self._model_id, embedding_hashes)
        analyses = set() if self._full else self._terms.known(self._names, lexical_hashes)
        for embedding_hash, embedded, lexical_hash, lexical in pending:
            if embedding_hash not in vectors:
                self._spilled.put(EMBEDDING, embedding_hash, embedded)
            if lexical_hash not in analyses:
                self._spilled.put(LEXICAL, lexical_hash, lexical)
