"""JSON Lines feeds (`.jsonl`, `.ndjson`, `.json`): one object per line."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping

from recommender.errors import FeedError, InvalidRecord
from recommender.ingest.field_map import header_problem, rename
from recommender.ingest.formats.record_lines import (
    BOM,
    RawRecord,
    decoded_line,
    first_undecodable,
    too_large,
)
from recommender.ingest.limits import BoundedStream
from recommender.ingest.record_memo import Keyed, Recall, Recalled, record_key

#: JSON Lines objects checked together for a missing required field, as a header would be.
_KEY_SAMPLE = 10


def jsonl_records(
    stream: BoundedStream, field_map: Mapping[str, str], recall: Recall | None = None
) -> Iterator[RawRecord]:
    """Records of a JSON Lines file, renamed by `field_map`.

    Its first objects stand in for a header: when together they lack a required field (so each
    of them does), the file fails with one message naming the keys found, not once per record.
    With `recall`, every line's key is computed: a line after that header sample that `recall`
    knows is yielded as its `Recalled`, unparsed; the others as `Keyed` records (each parsed
    object with its line's key).
    """
    header_read = False

    def after_header(key: bytes) -> Recalled | None:
        return recall(key) if recall is not None and header_read else None

    raw_records = _jsonl_raw(stream, None if recall is None else after_header)
    head: list[RawRecord] = []
    keys: dict[str, None] = {}
    objects = 0
    for number, raw in raw_records:
        head.append((number, raw))
        parsed = raw.record if isinstance(raw, Keyed) else raw
        if isinstance(parsed, Mapping):
            keys.update(dict.fromkeys(parsed))
            objects += 1
            if objects == _KEY_SAMPLE:
                break
    problem = header_problem(stream.source, keys, field_map, "field in the first records")
    if objects and problem is not None:
        raise problem
    # The generator reads lazily: the lines after the sample are the first it may recall.
    header_read = True
    for number, raw in itertools.chain(head, raw_records):
        yield number, _renamed(raw, field_map)


def _renamed(raw: object, field_map: Mapping[str, str]) -> object:
    if isinstance(raw, Keyed):
        return Keyed(raw.key, _renamed(raw.record, field_map))
    return rename(raw, field_map) if isinstance(raw, Mapping) else raw


def _jsonl_raw(stream: BoundedStream, recall: Recall | None) -> Iterator[RawRecord]:
    for number, raw in stream.lines():
        if raw is None:
            yield number, too_large(stream)
            continue
        # Line 1's byte order mark is not part of its record: the same record on another line,
        # where a mark would be an error, must not be taken for it.
        key = None if recall is None else record_key(raw.removeprefix(BOM) if number == 1 else raw)
        recalled = None if key is None or recall is None else recall(key)
        if recalled is not None:  # before decoding: the bytes are those of a valid record
            yield number, recalled
            continue
        text = decoded_line(number, raw)
        if not text.strip(" \t\r\n"):
            continue
        undecodable = first_undecodable(text)
        if undecodable is not None:
            yield number, InvalidRecord(f"invalid UTF-8 at column {undecodable}")
        elif number == 1 and text.lstrip().startswith("["):
            raise FeedError(
                f"{stream.source}: holds a JSON array; JSON Lines is expected, one object per "
                "line (convert it with: jq -c '.[]' FILE > feed.jsonl)"
            )
        else:
            parsed = _parse_json(text.rstrip("\r\n"))
            yield number, parsed if key is None else Keyed(key, parsed)


def _parse_json(text: str) -> object:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        return InvalidRecord(f"invalid JSON at column {exc.colno}: {exc.msg}")
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        return InvalidRecord(f"invalid JSON: {exc}")
    except RecursionError:
        return InvalidRecord("invalid JSON: nested too deeply")


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")
