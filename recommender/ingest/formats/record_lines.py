"""What the file formats share: numbered, decoded lines of a bounded stream and the record
shape they yield (`RawRecord`: the line a record starts on and its raw fields, or the
`InvalidRecord` it could not be); `ingest.feeds` adds the file's name to make a `RawItem`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

from recommender.errors import InvalidRecord
from recommender.ingest.limits import BoundedStream
from recommender.ingest.record_memo import Recall

BOM = b"\xef\xbb\xbf"
#: Lone surrogates that `surrogateescape` leaves in place of bytes that are not UTF-8.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
#: (line a record starts on, raw record); an InvalidRecord stands for a record that did not parse.
RawRecord = tuple[int, object]
#: A file format: a bounded stream, the field renames and a `Recall` (used by formats whose
#: records can be recognised unparsed: JSON Lines) in, raw records out.
RecordParser = Callable[[BoundedStream, Mapping[str, str], Recall | None], Iterator[RawRecord]]


def numbered_lines(stream: BoundedStream) -> Iterator[tuple[int, str | None]]:
    """Numbered lines, line endings kept, None for one over the record limit; bytes that are not
    UTF-8 become lone surrogates so that one bad line spoils one record, not the file."""
    for number, raw in stream.lines():
        yield number, None if raw is None else decoded_line(number, raw)


def decoded_line(number: int, raw: bytes) -> str:
    """Line `number` of a file (from 1), decoded as `numbered_lines` decodes it."""
    data = raw.removeprefix(BOM) if number == 1 else raw
    return data.decode("utf-8", "surrogateescape")


def first_undecodable(text: str) -> int | None:
    """The column (from 1) of the first byte of a decoded line that was not UTF-8; None when
    every byte was. (A decoded line holds surrogates only where its bytes were not UTF-8, and
    encoding, in C, finds that there are some far faster than a regular expression finds one.)"""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        found = _UNDECODABLE.search(text)
        return None if found is None else found.start() + 1
    return None


def too_large(stream: BoundedStream) -> InvalidRecord:
    """The problem of a record over RECOMMENDER_FEED_MAX_RECORD_BYTES."""
    return InvalidRecord(
        f"record too large: over {stream.limits.max_record_bytes:,} bytes "
        "(RECOMMENDER_FEED_MAX_RECORD_BYTES)"
    )
