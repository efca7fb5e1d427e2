"""CSV feeds: a header row naming the fields, one article per row."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping

from recommender.errors import InvalidRecord
from recommender.ingest.field_map import header_problem
from recommender.ingest.formats.record_lines import (
    RawRecord,
    first_undecodable,
    numbered_lines,
    too_large,
)
from recommender.ingest.limits import BoundedStream
from recommender.ingest.record_memo import Recall

#: Above every limit of validate_record, so that it, not csv's 128 KiB default, refuses long fields.
_CSV_FIELD_LIMIT = 1 << 20


def csv_records(
    stream: BoundedStream, field_map: Mapping[str, str], _recall: Recall | None = None
) -> Iterator[RawRecord]:
    """Rows after the header as dicts of text, columns renamed by `field_map`; validate_record
    splits the ';'-separated tags. A header that lacks a required column fails the file. (Rows
    are always parsed: a row may span lines, so none is recalled by its bytes.)"""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    rows = _csv_rows(stream)
    first = next(rows, None)
    if first is None:
        return
    header_line, header = first
    found, unusable = _csv_header(header_line, header)
    missing = None if unusable else header_problem(stream.source, found, field_map, "column")
    if missing is not None:
        raise missing
    names = [field_map.get(name, name) for name in found]
    for number, row in rows:
        if isinstance(row, InvalidRecord):
            yield number, row
        elif unusable:
            yield number, InvalidRecord(unusable)
        elif len(row) != len(names):
            message = f"expected {len(names)} fields as in the header, found {len(row)}"
            yield number, InvalidRecord(message)
        else:
            # A file saved with Windows line endings keeps them inside quoted fields too.
            values = (value.replace("\r\n", "\n") for value in row)
            yield number, dict(zip(names, values, strict=True))


class _RecordTooLarge(Exception):
    """A CSV row whose lines add up to more than the record limit."""


class _CsvLines:
    """The text lines csv.reader parses, counting the bytes of the row being read.

    An iterator object rather than a generator: raising from a generator would end it, while csv
    resets its state on the next row, so reading goes on after an oversized row.
    """

    def __init__(self, stream: BoundedStream) -> None:
        self._lines = numbered_lines(stream)
        self._limit = stream.limits.max_record_bytes
        self.line = 0
        self.row_bytes = 0

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        self.line, text = next(self._lines)
        self.row_bytes += len(text) if text is not None else self._limit + 1
        if text is None or self.row_bytes > self._limit:
            raise _RecordTooLarge
        return text


def _csv_rows(stream: BoundedStream) -> Iterator[tuple[int, list[str] | InvalidRecord]]:
    """Non-empty rows with the line each starts on; a malformed or oversized row becomes an
    InvalidRecord."""
    lines = _CsvLines(stream)
    reader = csv.reader(lines)
    while True:
        start = lines.line + 1
        lines.row_bytes = 0
        try:
            row = next(reader)
        except StopIteration:
            return
        except _RecordTooLarge:
            yield start, too_large(stream)
            continue
        except csv.Error as exc:
            # Drop csv's advice about opening the file, which is ours to follow, not the user's.
            yield start, InvalidRecord(f"malformed CSV: {str(exc).split(' - ')[0]}")
            continue
        undecodable = [
            index for index, value in enumerate(row, 1) if first_undecodable(value) is not None
        ]
        if undecodable:
            yield start, InvalidRecord(f"invalid UTF-8 in field {undecodable[0]}")
        elif row:
            yield start, row


def _csv_header(line: int, header: list[str] | InvalidRecord) -> tuple[list[str], str | None]:
    """Column names, and why the header cannot name the fields (every row is then skipped)."""
    if isinstance(header, InvalidRecord):
        return [], f"unusable CSV header on line {line}: {header}"
    names = [name.strip() for name in header]
    if "" in names:
        return names, f"CSV header on line {line}: column {names.index('') + 1} has no name"
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return names, f"CSV header on line {line} repeats column {repeated[0]!r}"
    return names, None
