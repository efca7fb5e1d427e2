"""Plain-text articles (`.txt`), one per file: title, then lead and body, with the furniture of
saved web pages (author boxes, "read more" trailers) left out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from recommender.errors import InvalidRecord
from recommender.ingest.formats.record_lines import BOM, RawRecord
from recommender.ingest.limits import BoundedStream
from recommender.ingest.record_memo import Recall

#: A .txt article is read whole; a larger file cannot hold a valid one (body <= 500 k characters).
_MAX_TEXT_BYTES = 4 << 20
#: Final lines of saved web pages that lead to other articles, not part of this one.
_TRAILERS = frozenset({"you might also like", "related articles", "read more"})
_READ_BIO = "read full bio"
_MAX_NAME_WORDS = 8


def text_records(
    stream: BoundedStream, _field_map: Mapping[str, str], _recall: Recall | None = None
) -> Iterator[RawRecord]:
    """One article per file: title, blank line, summary paragraph ending in the slug, body
    (always parsed: never recalled)."""
    data = stream.read(_MAX_TEXT_BYTES + 1)
    if len(data) > _MAX_TEXT_BYTES:
        yield 1, InvalidRecord(f"larger than {_MAX_TEXT_BYTES:,} bytes; not one article")
        return
    try:
        text = data.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        yield 1, InvalidRecord(f"invalid UTF-8 on line {line}")
        return
    try:
        yield 1, _article_text_fields(text)
    except InvalidRecord as exc:
        yield 1, exc


def _article_text_fields(text: str) -> dict[str, str]:
    """Fields of a plain-text article; raises InvalidRecord when the layout is not followed."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    start = _skip_blank(lines, 0)
    if start == len(lines):
        raise InvalidRecord("empty article: expected a title line")
    if start + 1 < len(lines) and lines[start + 1]:
        raise InvalidRecord(f"expected a blank line after the title, on line {start + 2}")
    first = _skip_blank(lines, start + 1)
    end = first
    while end < len(lines) and lines[end]:
        end += 1
    if first == end:
        raise InvalidRecord("expected a summary paragraph ending in a slug line after the title")
    *summary, slug = (line.strip() for line in lines[first:end])
    if len(slug.split()) != 1:
        raise InvalidRecord(f"expected the slug (one word) on line {end}, after the summary")
    body, author = _split_author_box(lines[end:])
    fields = {"title": lines[start].strip(), "summary": " ".join(summary), "slug": slug}
    fields["body"] = "\n".join(body)
    if author is not None:
        fields["author"] = author
    return fields


def _skip_blank(lines: list[str], index: int) -> int:
    while index < len(lines) and not lines[index]:
        index += 1
    return index


def _split_author_box(lines: list[str]) -> tuple[list[str], str | None]:
    """Split the body from a closing author box, returning the body lines and the author.

    The box is recognised by its shape, not by a name: after a blank line, a short name line
    repeated on the next line, then one bio paragraph, optionally "Read full bio"; only trailer
    lines (e.g. "You Might Also Like") may follow it. Without a box, trailer lines are dropped.
    """
    for index in range(len(lines) - 2, -1, -1):
        name = lines[index].strip()
        if (
            name
            and lines[index + 1].strip() == name
            and len(name.split()) <= _MAX_NAME_WORDS
            and (index == 0 or not lines[index - 1])
            and _is_bio(lines[index + 2 :])
        ):
            return lines[:index], name
    return _drop_furniture(lines, extra=False), None


def _is_bio(lines: list[str]) -> bool:
    """Whether these lines are one paragraph followed only by page furniture."""
    bio = _drop_furniture(lines, extra=True)
    return bool(bio) and all(bio)


def _drop_furniture(lines: list[str], *, extra: bool) -> list[str]:
    """Lines without blank edges and closing trailers (and "Read full bio" lines when `extra`)."""
    end = len(lines)
    while end and (not lines[end - 1] or _is_furniture(lines[end - 1], extra=extra)):
        end -= 1
    start = _skip_blank(lines, 0)
    return lines[start:end]


def _is_furniture(line: str, *, extra: bool) -> bool:
    text = line.strip().lower()
    return text in _TRAILERS or (extra and text.startswith(_READ_BIO))
