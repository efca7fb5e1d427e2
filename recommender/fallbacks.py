"""The fallback chain: what fills a related list once the related candidates run out.

A chain is written `popular,newest` (the steps in order), a shorter one (`newest`), or `off`:
the list is then filled as it always was (a wider search, then the newest articles that pass
the filters) and its items carry no `reason`. With a chain, every item says why it is there:
`related`, `popular` (most clicked in the source's section over the last hours) or `newest`
(newest in the source's section, then anywhere).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

#: Why an item is in a list that has a fallback chain.
Reason = Literal["related", "popular", "newest"]
#: A step of the chain, after the related candidates.
FallbackStep = Literal["popular", "newest"]
STEPS: tuple[FallbackStep, ...] = get_args(FallbackStep)
#: The chain that turns fallbacks off (lists as before, no `reason`).
OFF = "off"


@functools.lru_cache(maxsize=64)  # every request reads its placement's chain
def parse_chain(text: str) -> tuple[FallbackStep, ...] | None:
    """The steps of a chain written `popular,newest` (any order, each at most once), or None
    for `off`; anything else raises ValueError saying what is allowed."""
    written = text.strip().lower()
    if written == OFF:
        return None
    names = [name.strip() for name in written.split(",")]
    allowed = f"a comma-separated list of {', '.join(STEPS)} (each at most once), or {OFF}"
    steps: list[FallbackStep] = []
    for name in names:
        if name not in STEPS:
            raise ValueError(f"unknown fallback step {name!r} in {text!r}: expected {allowed}")
        if name in steps:
            raise ValueError(f"fallback step {name!r} repeated in {text!r}: expected {allowed}")
        steps.append(name)
    return tuple(steps)


@dataclass(frozen=True, slots=True)
class Fallbacks:
    """A chain as the ranking applies it to one list."""

    steps: tuple[FallbackStep, ...]
    popular: Mapping[str | None, Sequence[str]]
    """Slugs most clicked first, by section (None: articles without one); what `popular`
    takes from."""
