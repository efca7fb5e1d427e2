"""JSON Lines feeds (`.jsonl`, `.ndjson`, `.json`): one object per line."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping

from recommender.errors import FeedError, InvalidRecord
from recommender.ingest.field_map import header_problem, rename
from recommender.ingest.formats.record_lines import (
    RawRecord,
    first_undecodable,
    numbered_lines,
    too_large,
)
from recommender.ingest.limits import BoundedStream

#: JSON Lines objects checked together for a missing required field, as a header would be.
_KEY_SAMPLE = 10


def jsonl_records(stream: BoundedStream, field_map: Mapping[str, str]) -> Iterator[RawRecord]:
    """Records of a JSON Lines file, renamed by `field_map`.

    Its first objects stand in for a header: when together they lack a required field (so each
    of them does), the file fails with one message naming the keys found, not once per record.
    """
    raw_records = _jsonl_raw(stream)
    head: list[RawRecord] = []
    keys: dict[str, None] = {}
    objects = 0
    for number, raw in raw_records:
        head.append((number, raw))
        if isinstance(raw, Mapping):
            keys.update(dict.fromkeys(raw))
            objects += 1
            if objects == _KEY_SAMPLE:
                break
    problem = header_problem(stream.source, keys, field_map, "field in the first records")
    if objects and problem is not None:
        raise problem
    for number, raw in itertools.chain(head, raw_records):
        yield number, rename(raw, field_map) if isinstance(raw, Mapping) else raw


def _jsonl_raw(stream: BoundedStream) -> Iterator[RawRecord]:
    for number, text in numbered_lines(stream):
        if text is None:
            yield number, too_large(stream)
            continue
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
            yield number, _parse_json(text.rstrip("\r\n"))


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
