"""Records recognised by their raw bytes, so that a nightly run skips parsing what it read before.

A JSON Lines record's line, hashed (`record_key`), names what parsing, renaming and validating it
gave, since these depend on nothing else than the line, the field renames and the rules of this
release (`memo_fingerprint`). A reader given a `Recall` asks it before parsing each line: a line
it recalls is yielded as `Recalled` (its slug and notes, and where the caller holds the rest),
every other line is parsed as always and its key is handed on (`RecordOrigin`) for the caller to
remember. Only JSON Lines files are recalled: the other formats are parsed every time.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar

import orjson

#: Bytes of a record key (SHA-1: four times as fast as BLAKE2b or SHA-256 here, which counts
#: at a gigabyte of feed a night). Keys are only compared with those of the same sources' earlier
#: records: chance collisions are out of reach, and a made one (~2^63 work) would only let a
#: source's author swap two records of his own.
KEY_BYTES = 20
#: The modules whose code decides what a JSON Lines line gives (parsing, renaming, validating,
#: the card and texts): a key is remembered under their source, so that any change of them
#: forgets every key.
_RULE_MODULES = (
    "recommender.articles",
    "recommender.ingest.field_map",
    "recommender.ingest.formats.jsonl_format",
    "recommender.ingest.formats.record_lines",
    "recommender.ingest.record_memo",
)
T_co = TypeVar("T_co", covariant=True)


def record_key(line: bytes) -> bytes:
    """The key of one raw record (a JSON Lines line, its ending included)."""
    return hashlib.sha1(line, usedforsecurity=False).digest()


def memo_fingerprint(field_map: Mapping[str, str]) -> str:
    """What a record's key is valid under besides its bytes: the field renames, and the code of
    the rules (and of the JSON libraries) that turn a line into an article, its card and its
    texts."""
    # The JSON libraries' releases too: they parse the line and write the card.
    versions = [sys.version, orjson.__version__]
    digest = hashlib.sha256(orjson.dumps([sorted(field_map.items()), versions]))
    for name in _RULE_MODULES:
        spec = find_spec(name)  # the module's file, read without importing it
        assert spec is not None and spec.origin is not None, name
        digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class RecordOrigin:
    """Where an article came from: its record's key and the notes validating it gave."""

    key: bytes
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recalled:
    """A record recognised by its key: not parsed, its article carried over by the caller."""

    slug: str
    origin: RecordOrigin
    at: int
    """Where the caller's memory holds it (a row of the served version)."""


class Keyed(NamedTuple):
    """A parsed record with the key of its line."""

    key: bytes
    record: object


#: A record key -> what it was last read as, if remembered.
Recall = Callable[[bytes], Recalled | None]


class RecordMemo(Protocol[T_co]):
    """What a caller remembers of records, and how it keeps one it recalled (`read_catalog`)."""

    def recall(self, key: bytes) -> Recalled | None: ...

    def carry(self, recalled: Recalled) -> T_co: ...
