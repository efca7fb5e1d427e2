"""Bounds on what one source may make us hold: a record, and a whole (decompressed) source.

A gzipped feed can hold a gigabyte-long line in a few megabytes, so lines are read in bounded
pieces and an oversized one is skipped without ever being held whole.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from recommender.errors import FeedError
from recommender.ingest.ingest_settings import ingest_default

#: Pieces in which the rest of an oversized line is read and dropped.
_SKIP_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Largest record (a line, or a CSV row's lines) and largest decompressed source, in bytes."""

    max_record_bytes: int = ingest_default("max_record_bytes")
    max_source_bytes: int = ingest_default("max_source_bytes")


class ByteReader(Protocol):
    """The part of a binary file object the readers use."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


class BoundedStream:
    """A binary stream that refuses to yield more than `max_source_bytes` in all (FeedError)."""

    def __init__(self, raw: ByteReader, source: str, limits: ReadLimits) -> None:
        self._raw = raw
        self.source = source
        self.limits = limits
        self._taken = 0

    def read(self, size: int) -> bytes:
        """Up to `size` bytes (size >= 0: never the whole rest at once)."""
        return self._count(self._raw.read(size))

    def lines(self) -> Iterator[tuple[int, bytes | None]]:
        """Numbered lines with their endings; None for a line over `max_record_bytes`, which is
        read past in bounded pieces, never held."""
        limit = self.limits.max_record_bytes
        number = 0
        while True:
            line = self._count(self._raw.readline(limit + 1))
            if not line:
                return
            number += 1
            if len(line) > limit and not line.endswith(b"\n"):
                self._skip_rest_of_line()
                yield number, None
            else:
                yield number, line

    def _skip_rest_of_line(self) -> None:
        while True:
            piece = self._count(self._raw.readline(_SKIP_CHUNK))
            if not piece or piece.endswith(b"\n"):
                return

    def _count(self, data: bytes) -> bytes:
        self._taken += len(data)
        if self._taken > self.limits.max_source_bytes:
            raise FeedError(
                f"{self.source}: more than {self.limits.max_source_bytes:,} bytes "
                "(decompressed); refused (RECOMMENDER_FEED_MAX_SOURCE_BYTES)"
            )
        return data


def gunzip_bounded(data: bytes, limit: int, source: str) -> bytes:
    """Decompress gzip `data`, refusing (FeedError) output beyond `limit` bytes (gzip bombs)."""
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise FeedError(f"{source}: not valid gzip: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise FeedError(f"{source}: more than {limit:,} bytes once decompressed; refused")
    return out
