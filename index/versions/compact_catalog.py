"""The read stage of a reindex, held compactly: of each article only the hashes of its two texts
and where its card is in a scratch file (`CardFile`), while the texts that later stages must
still embed or analyse (those the caches lack) wait in a `SpilledTexts`: in memory up to a
budget, past it in a scratch file. Both live in the data directory's scratch directory for the
run. So reading a catalog never holds its bodies or its cards, whatever its size.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, overload

import numpy as np
import orjson
from numpy.typing import NDArray

from index.index_errors import StorageError
from index.state.embedding_cache import EmbeddingCache
from index.state.hashed_blobs import HashedBlobs
from index.state.term_count_cache import TermCountCache
from index.versions.build_space import NewTexts
from index.versions.record_keys import ServedRecords
from recommender.articles import Article, embedding_text, lexical_text, text_hash
from recommender.ingest.record_memo import Recalled, RecordOrigin

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
    """Articles per block: cache lookups, the analyses read and the lexical rows weighed for
    the fit, vector searches and pair scores."""
    spill_memory: int = 64 * 1024 * 1024
    """Characters of waiting texts (as many bytes for ASCII text, up to twice as many for other
    text), and bytes of waiting cards, held in memory before they go to the scratch
    directory."""


DEFAULT_BLOCKS = BlockSizes()


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One article as the stages after reading need it."""

    card_offset: int
    """Where `Article.card()`, as JSON, starts in the run's `CardFile`."""
    card_size: int
    embedding_hash: str
    lexical_hash: str
    origin: RecordOrigin | None = None
    """The key and notes of the feed record it was read from, where the run keys them."""


class CardFile:
    """Cards appended as they are read, read back by position: kept in memory until they pass
    `budget` bytes, then moved to a file in `directory`, so a catalog's cards never wait in
    memory whole."""

    def __init__(self, directory: Path, budget: int) -> None:
        self._path = directory / "cards.jsonl"
        self._budget = budget
        self._file: BinaryIO | None = None
        self._waiting = bytearray()
        self._stored = 0
        """Bytes moved to the file; the waiting ones follow them."""

    def append(self, card: bytes) -> int:
        """Store one card; returns its offset. Raises StorageError when the disk is full."""
        offset = self._stored + len(self._waiting)
        self._waiting += card
        if len(self._waiting) > self._budget:
            self._spill()
        return offset

    def _spill(self) -> None:
        try:
            if self._file is None:
                self._file = self._path.open("w+b", buffering=0)
            self._file.write(self._waiting)
        except OSError as exc:
            raise StorageError(
                f"cannot write the reindex scratch file {self._path} ({exc}): is the disk full?"
            ) from exc
        self._stored += len(self._waiting)
        self._waiting = bytearray()

    def read(self, offset: int, size: int) -> bytes:
        """The card stored at `offset` (a card is never split between memory and the file)."""
        if offset >= self._stored:
            return bytes(self._waiting[offset - self._stored : offset - self._stored + size])
        assert self._file is not None
        return os.pread(self._file.fileno(), size, offset)

    def cards(self, entries: Sequence[CatalogEntry]) -> EncodedCards:
        """The cards of `entries`, in their order."""
        offsets = np.fromiter((e.card_offset for e in entries), np.int64, len(entries))
        sizes = np.fromiter((e.card_size for e in entries), np.int64, len(entries))
        return EncodedCards(self.read, offsets, sizes)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class EncodedCards(Sequence[dict[str, Any]]):
    """Cards in a `CardFile`, read and decoded one at a time (valid while it is open)."""

    def __init__(
        self,
        read: Callable[[int, int], bytes],
        offsets: NDArray[np.int64],
        sizes: NDArray[np.int64],
    ) -> None:
        self._read = read
        self._offsets = offsets
        self._sizes = sizes

    def __len__(self) -> int:
        return len(self._offsets)

    @overload
    def __getitem__(self, at: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, at: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, at: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(at, slice):
            return [self[row] for row in range(len(self))[at]]
        decoded: dict[str, Any] = orjson.loads(
            self._read(int(self._offsets[at]), int(self._sizes[at]))
        )
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
        self._to_embed = 0
        self._to_analyse_bytes = 0

    def put(self, kind: str, hashed: str, text: str) -> None:
        if (kind, hashed) not in self._waiting:
            self._waiting[kind, hashed] = text
            self._size += len(text)
            if kind == EMBEDDING:
                self._to_embed += 1
            else:
                self._to_analyse_bytes += len(text.encode("utf-8"))
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

    @property
    def new(self) -> NewTexts:
        """How much was put aside: what the caches will grow by (a text put aside again after a
        spill counts twice, so this errs large)."""
        return NewTexts(self._to_embed, self._to_analyse_bytes)

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


@dataclass(frozen=True, slots=True)
class Scratch:
    """What a run puts aside in its scratch directory."""

    directory: Path
    texts: SpilledTexts
    cards: CardFile


@contextmanager
def run_scratch(data_dir: Path, budget: int) -> Iterator[Scratch]:
    """A run's scratch directory in the data directory, with its `SpilledTexts` and `CardFile`
    (each holding up to `budget` in memory): empty at the start (what a killed run left is
    removed) and removed at the end, whatever happens. The caller holds the reindex lock."""
    directory = data_dir / SCRATCH_DIR
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    scratch = Scratch(directory, SpilledTexts(directory, budget), CardFile(directory, budget))
    try:
        yield scratch
    finally:
        scratch.texts.close()
        scratch.cards.close()
        shutil.rmtree(directory, ignore_errors=True)


class CatalogReader:
    """Makes `CatalogEntry`s of articles as they are read (`keep`), their cards stored in the
    scratch's `CardFile`, and puts aside the texts of those whose embedding (for `model_id`) or
    analysis (with `names` or not) the caches lack: all of them with `full`. Checks the caches
    a block of articles at a time.

    A `RecordMemo` of the `served` version's records: a record it recalls is carried over
    (`carry`: its card and text hashes as the served version holds them, its texts in the
    caches already), unparsed."""

    def __init__(
        self,
        embeddings: EmbeddingCache,
        terms: TermCountCache,
        scratch: Scratch,
        *,
        model_id: str,
        names: bool,
        full: bool,
        block: int,
        served: ServedRecords | None = None,
    ) -> None:
        self._served = served
        self._embeddings = embeddings
        self._terms = terms
        self._spilled = scratch.texts
        self._cards = scratch.cards
        self._model_id = model_id
        self._names = names
        self._full = full
        self._block = block
        self._pending: list[tuple[str, str, str, str]] = []

    def recall(self, key: bytes) -> Recalled | None:
        return None if self._served is None else self._served.recall(key)

    def carry(self, recalled: Recalled) -> CatalogEntry:
        assert self._served is not None
        served = self._served.record(recalled.at)
        offset = self._cards.append(served.card)
        return CatalogEntry(
            offset, len(served.card), served.embedding_hash, served.lexical_hash, recalled.origin
        )

    def keep(self, article: Article, origin: RecordOrigin | None = None) -> CatalogEntry:
        embedded, lexical = embedding_text(article), lexical_text(article)
        card = orjson.dumps(article.card())
        entry = CatalogEntry(
            self._cards.append(card), len(card), text_hash(embedded), text_hash(lexical), origin
        )
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
