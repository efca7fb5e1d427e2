"""`record_keys.npy` and `record_keys.json` of a version: the key of the feed record each article
was read from (`recommender.ingest.record_memo`), so that the next run carries an unchanged
record's card and text hashes over from this version without parsing or validating it.

record_keys.npy   uint8 (count, 20): row i = the key of article i's record; zeros where it came
                  from no keyed record (a live article, a CSV row, a web page)
record_keys.json  {"fingerprint": what the keys are valid under (`memo_fingerprint`),
                   "notes": {row: [the notes validating its record gave], ...}}

Written in the staging directory and checksummed in the manifest like every other file;
versions written before them have none, and their next run parses every record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from numpy.typing import NDArray

from index.versions.card_table import CARDS, OFFSETS
from index.versions.manifest import Manifest, file_sha256
from index.versions.text_hashes import read_text_table
from recommender.ingest.record_memo import KEY_BYTES, Recalled, RecordOrigin
from recommender.mapped_files import LineTable, map_array, map_bytes

RECORD_KEYS = "record_keys.npy"
RECORD_NOTES = "record_keys.json"
_NO_KEY = bytes(KEY_BYTES)
#: (embedding hashes, lexical hashes) of a block of rows -> the rows whose texts both caches
#: hold (only those can be carried: their texts are not at hand to embed or analyse again).
CachedRows = Callable[[Sequence[str], Sequence[str]], NDArray[np.bool_]]


def write_record_keys(
    directory: Path, origins: Sequence[RecordOrigin | None], fingerprint: str
) -> list[str]:
    """Record the articles' record keys and notes (in catalog order) in `directory`; returns
    the files' names, for the manifest."""
    keys = b"".join(_NO_KEY if origin is None else origin.key for origin in origins)
    table = np.frombuffer(keys, dtype=np.uint8).reshape(len(origins), KEY_BYTES)
    np.save(directory / RECORD_KEYS, table, allow_pickle=False)
    notes = {
        str(row): list(origin.notes)
        for row, origin in enumerate(origins)
        if origin is not None and origin.notes
    }
    body = {"fingerprint": fingerprint, "notes": notes}
    (directory / RECORD_NOTES).write_bytes(orjson.dumps(body))
    return [RECORD_KEYS, RECORD_NOTES]


@dataclass(frozen=True, slots=True)
class ServedRecord:
    """What an article of the served version carries into the next one."""

    card: bytes
    embedding_hash: str
    lexical_hash: str


class ServedRecords:
    """The served version's records by key: `recall` recognises one, `record` gives what its
    article carries over (its card as the version holds it, and its text hashes)."""

    def __init__(
        self,
        rows: dict[bytes, int],
        notes: dict[int, tuple[str, ...]],
        cards: LineTable,
        texts: NDArray[np.uint8],
    ) -> None:
        self._rows = rows
        self._notes = notes
        self._cards = cards
        self._texts = texts

    def __len__(self) -> int:
        return len(self._rows)

    @classmethod
    def load(
        cls,
        directory: Path,
        manifest: Manifest,
        fingerprint: str,
        cached: CachedRows,
        block: int,
    ) -> ServedRecords | None:
        """The records of the version in `directory` whose texts are `cached`; None when it
        has no record keys, keys valid under another `fingerprint`, or files that fail their
        checksums (the run then parses every record, as without them)."""
        names = (RECORD_KEYS, RECORD_NOTES, CARDS, OFFSETS)
        if not all(_intact(directory, manifest, name) for name in names):
            return None
        body = orjson.loads((directory / RECORD_NOTES).read_bytes())
        texts = read_text_table(directory, manifest)
        keys = map_array(directory / RECORD_KEYS)
        offsets = map_array(directory / OFFSETS)
        if (
            body.get("fingerprint") != fingerprint
            or texts is None
            or not len(keys) == len(texts) == len(offsets) - 1 == manifest.count
        ):
            return None
        rows: dict[bytes, int] = {}
        for start in range(0, len(keys), block):
            stop = min(start + block, len(keys))
            usable = cached(_hex(texts[start:stop, 0]), _hex(texts[start:stop, 1]))
            for row in np.flatnonzero(usable).tolist():
                key = keys[start + row].tobytes()
                if key != _NO_KEY:
                    rows[key] = start + row
        notes = {int(row): tuple(found) for row, found in body["notes"].items()}
        return cls(rows, notes, LineTable(map_bytes(directory / CARDS), offsets), texts)

    def recall(self, key: bytes) -> Recalled | None:
        """The record with this key, if the served version was built from it."""
        row = self._rows.get(key)
        if row is None:
            return None
        return Recalled(
            _slug(self._cards.line(row)), RecordOrigin(key, self._notes.get(row, ())), row
        )

    def record(self, row: int) -> ServedRecord:
        """The card (as one JSON line, without its newline) and text hashes of a row."""
        card = self._cards.line(row).removesuffix(b"\n")
        texts = self._texts[row]
        return ServedRecord(card, texts[0].tobytes().hex(), texts[1].tobytes().hex())


def _intact(directory: Path, manifest: Manifest, name: str) -> bool:
    entry = manifest.files.get(name)
    path = directory / name
    return entry is not None and path.is_file() and file_sha256(path) == entry.sha256


def _hex(digests: NDArray[np.uint8]) -> list[str]:
    """Rows of raw digests as hex strings."""
    text = np.ascontiguousarray(digests).tobytes().hex()
    width = 2 * digests.shape[1]
    return [text[start : start + width] for start in range(0, len(text), width)]


def _slug(card: bytes) -> str:
    """The slug of a card line (`Article.card` writes it first; a slug needs no escaping)."""
    prefix = b'{"slug":"'
    if card.startswith(prefix):
        end = card.find(b'"', len(prefix))
        slug = card[len(prefix) : end]
        if b"\\" not in slug:
            return slug.decode()
    found: str = orjson.loads(card)["slug"]
    return found
