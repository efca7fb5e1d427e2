"""Renaming a feed's own field names to the Article's (`--map headline=title`)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from recommender.articles import KNOWN_FIELDS
from recommender.errors import FeedError

#: Names a mapping may point to: the Article's fields and the `category` synonym of section.
TARGETS = KNOWN_FIELDS | {"category"}
REQUIRED = ("slug", "title")


def parse_field_map(pairs: Iterable[str]) -> dict[str, str]:
    """`["headline=title", "link=url"]` -> `{"headline": "title", "link": "url"}`.

    Raises FeedError for a pair without `=`, with an empty name, or naming no Article field.
    """
    mapping: dict[str, str] = {}
    for pair in pairs:
        name, sep, target = (part.strip() for part in pair.partition("="))
        if not sep or not name or not target:
            raise FeedError(f"--map {pair!r}: expected NAME=FIELD, e.g. headline=title")
        if target not in TARGETS:
            raise FeedError(
                f"--map {pair!r}: {target!r} is no article field; use one of "
                + ", ".join(sorted(TARGETS))
            )
        mapping[name] = target
    return mapping


def rename(record: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """The record with mapped names replaced; a mapped field wins over one already so named."""
    renamed = {name: value for name, value in record.items() if name not in mapping}
    renamed.update({mapping[name]: value for name, value in record.items() if name in mapping})
    return renamed


def missing_fields(names: Collection[str]) -> list[str]:
    """Required fields a record or header with these names cannot fill."""
    return [name for name in REQUIRED if name not in names]


def header_problem(
    source: str, found: Collection[str], mapping: Mapping[str, str], what: str
) -> FeedError | None:
    """The one error for a file whose `found` columns or keys, once mapped, lack a required
    field; it names the file, what is missing and what was found."""
    missing = missing_fields({mapping.get(name, name) for name in found})
    if not missing:
        return None
    listed = ", ".join(repr(name) for name in found) or "none"
    return FeedError(
        f"{source}: no {' and no '.join(missing)} {what}; found {listed}. "
        "Name them with --map NAME=FIELD (e.g. --map headline=title)"
    )
