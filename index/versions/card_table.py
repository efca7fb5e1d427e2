"""A version's article cards: `cards.jsonl` (one JSON card a line, by row) and, beside it, the
columns serving reads without decoding a card, each a `.npy` file memory-mapped on load so that
every worker of a host shares one copy:

cards.offsets.npy      int64 (count + 1): where each card's line starts, then the file's end
cards.slug_hashes.npy  uint64, sorted: 64-bit hashes of the slugs (`mapped_files.key_hash`)
cards.slug_rows.npy    int64: the row of each hash above (slug -> row without a dict)
cards.published.npy    float64: publication time, epoch seconds (NaN when unknown)
cards.sections.npy     int32: section code into `cards.labels.json` (0: none)
cards.languages.npy    int32: language code into `cards.labels.json` (0: none)
cards.newest.npy       int64: rows, newest first (unknown dates last)
cards.labels.json      {"sections": [null, ...], "languages": [null, ...]}: code -> label

A card is decoded only when asked for. A version written before these columns has only
`cards.jsonl`: its columns are derived once on load (private to the process, 50 bytes an
article), its cards still read from the mapped file.
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, overload

import numpy as np
import orjson
from numpy.typing import NDArray

from recommender.mapped_files import KeyIndex, LineTable, key_hash, map_array, map_bytes
from recommender.ranking import LabelColumn

CARDS = "cards.jsonl"
OFFSETS = "cards.offsets.npy"
SLUG_HASHES = "cards.slug_hashes.npy"
SLUG_ROWS = "cards.slug_rows.npy"
PUBLISHED = "cards.published.npy"
SECTIONS = "cards.sections.npy"
LANGUAGES = "cards.languages.npy"
NEWEST = "cards.newest.npy"
LABELS = "cards.labels.json"
COLUMN_FILES = [OFFSETS, SLUG_HASHES, SLUG_ROWS, PUBLISHED, SECTIONS, LANGUAGES, NEWEST, LABELS]
"""The column files beside `cards.jsonl` (none in versions written before them)."""


def published_time(card: Mapping[str, Any]) -> float:
    """Epoch seconds of a card's `published_at` (NaN when unknown)."""
    published = card.get("published_at")
    return datetime.fromisoformat(published).timestamp() if published else float("nan")


@dataclass(frozen=True)
class CardColumns:
    """What serving reads of every card, by row, without decoding one."""

    offsets: NDArray[np.int64]
    slugs: KeyIndex
    published: NDArray[np.float64]
    sections: LabelColumn
    languages: LabelColumn
    newest: NDArray[np.int64]
    """Rows by publication time, newest first; unknown dates last; ties in row order."""

    def hold(self, count: int) -> bool:
        """Whether every column holds `count` rows (the offsets one more)."""
        rows = (
            self.slugs.hashes,
            self.slugs.rows,
            self.published,
            self.sections.codes,
            self.languages.codes,
            self.newest,
        )
        return len(self.offsets) == count + 1 and all(len(column) == count for column in rows)

    def save(self, directory: Path) -> None:
        arrays = {
            OFFSETS: self.offsets,
            SLUG_HASHES: self.slugs.hashes,
            SLUG_ROWS: self.slugs.rows,
            PUBLISHED: self.published,
            SECTIONS: self.sections.codes,
            LANGUAGES: self.languages.codes,
            NEWEST: self.newest,
        }
        for name, values in arrays.items():
            np.save(directory / name, np.asarray(values), allow_pickle=False)
        labels = {"sections": self.sections.labels, "languages": self.languages.labels}
        (directory / LABELS).write_bytes(orjson.dumps(labels))

    @classmethod
    def load(cls, directory: Path) -> CardColumns:
        """The columns of a version directory, memory-mapped."""
        labels = orjson.loads((directory / LABELS).read_bytes())
        return cls(
            offsets=map_array(directory / OFFSETS),
            slugs=KeyIndex(map_array(directory / SLUG_HASHES), map_array(directory / SLUG_ROWS)),
            published=map_array(directory / PUBLISHED),
            sections=LabelColumn(map_array(directory / SECTIONS), labels["sections"]),
            languages=LabelColumn(map_array(directory / LANGUAGES), labels["languages"]),
            newest=map_array(directory / NEWEST),
        )


class _ColumnsBuilder:
    """Collects the columns of cards given one by one with the length of their line, in
    compact arrays (under 70 bytes an article at the peak, whatever the cards hold)."""

    def __init__(self) -> None:
        self._ends = array("q", [0])
        self._hashes = array("Q")
        self._published = array("d")
        self._sections: tuple[dict[str | None, int], array[int]] = ({None: 0}, array("i"))
        self._languages: tuple[dict[str | None, int], array[int]] = ({None: 0}, array("i"))

    def add(self, card: Mapping[str, Any], length: int) -> None:
        self._ends.append(self._ends[-1] + length)
        self._hashes.append(key_hash(card["slug"]))
        self._published.append(published_time(card))
        for (code_of, codes), field in ((self._sections, "section"), (self._languages, "language")):
            codes.append(code_of.setdefault(card.get(field), len(code_of)))

    def columns(self) -> CardColumns:
        published = np.frombuffer(self._published, dtype=np.float64)
        newest = np.argsort(-np.nan_to_num(published, nan=-np.inf), kind="stable")
        sections, languages = (
            LabelColumn(np.frombuffer(codes, dtype=np.int32), list(code_of))
            for code_of, codes in (self._sections, self._languages)
        )
        return CardColumns(
            offsets=np.frombuffer(self._ends, dtype=np.int64),
            slugs=KeyIndex.build(np.frombuffer(self._hashes, dtype=np.uint64)),
            published=published,
            sections=sections,
            languages=languages,
            newest=newest.astype(np.int64),
        )


def write_cards(cards: Iterable[Mapping[str, Any]], handle: BinaryIO) -> CardColumns:
    """Write cards as JSON lines, one by one (a stream of them will do); returns their
    columns."""
    builder = _ColumnsBuilder()
    for card in cards:
        line = orjson.dumps(card) + b"\n"
        handle.write(line)
        builder.add(card, len(line))
    return builder.columns()


def _derived_columns(path: Path) -> CardColumns:
    """The columns of a cards file written without them."""
    builder = _ColumnsBuilder()
    with path.open("rb") as handle:
        for line in handle:
            builder.add(orjson.loads(line), len(line))
    return builder.columns()


class CardTable(Sequence[dict[str, Any]]):
    """A version's cards by row, each decoded when asked for, with their columns."""

    def __init__(self, lines: LineTable, columns: CardColumns) -> None:
        self._lines = lines
        self.columns = columns

    @classmethod
    def load(cls, directory: Path, *, with_columns: bool) -> CardTable:
        """The cards of a version directory, memory-mapped; `with_columns` when it holds their
        column files (else they are derived from the cards)."""
        columns = (
            CardColumns.load(directory) if with_columns else _derived_columns(directory / CARDS)
        )
        return cls(LineTable(map_bytes(directory / CARDS), columns.offsets), columns)

    @classmethod
    def of(cls, cards: Iterable[Mapping[str, Any]]) -> CardTable:
        """Cards held in memory (a version built for the offline evaluation)."""
        buffer = io.BytesIO()
        columns = write_cards(cards, buffer)
        return cls(LineTable(buffer.getvalue(), columns.offsets), columns)

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, row: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, row: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, row: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        count = len(self._lines)
        if row < 0:
            row += count
        if not 0 <= row < count:
            raise IndexError(f"card {row} of {count}")
        card: dict[str, Any] = orjson.loads(self._lines.line(row))
        return card

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in range(len(self)):
            yield self[row]

    def row_of(self, slug: str) -> int | None:
        """The row of the card with this slug, if any."""
        # Cards are written slug first (`Article.card`): comparing the start of the line spares
        # decoding it, and any other line is decoded to be sure.
        start = b'{"slug":' + orjson.dumps(slug) + b","
        for row in self.columns.slugs.candidates(slug):
            line = self._lines.line(row)
            if line.startswith(start) or orjson.loads(line)["slug"] == slug:
                return row
        return None

    @property
    def rows(self) -> Mapping[str, int]:
        """Slug -> row."""
        return _SlugRows(self)


class _SlugRows(Mapping[str, int]):
    def __init__(self, cards: CardTable) -> None:
        self._cards = cards

    def __getitem__(self, slug: str) -> int:
        row = self._cards.row_of(slug)
        if row is None:
            raise KeyError(slug)
        return row

    def __iter__(self) -> Iterator[str]:
        return (card["slug"] for card in self._cards)

    def __len__(self) -> int:
        return len(self._cards)
