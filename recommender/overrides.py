"""Editors' overrides of suggestion lists: pins and blocks, and how they change a ranked list.

- A **pin** puts article `target` in slot `slot` (1-based) of `source`'s list, until an optional
  moment; an expired pin stops applying by itself.
- A **block** keeps `target` out of `source`'s list; a **global block** (no source) keeps it
  out of every list (e.g. a legal hold).

Blocks win over pins. Pins respect the request's own filters (a pinned article outside the
requested sections is not shown), and two pins for one slot leave the newer in the slot and
move the older one down.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

#: Slots an editor can pin to: the longest list the API returns.
MAX_SLOT = 50


@dataclass(frozen=True, slots=True)
class Pin:
    source: str
    target: str
    slot: int
    until: float | None
    """Unix time after which the pin no longer applies; None = until removed."""
    reason: str | None
    actor: str
    created_at: float

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True)
class Block:
    source: str | None
    """None for a global block."""
    target: str
    reason: str | None
    actor: str
    created_at: float


@dataclass(frozen=True)
class Overrides:
    """Every pin and block in force, as one immutable snapshot."""

    generation: str = "0"
    pins: Sequence[Pin] = ()
    blocks: Sequence[Block] = ()
    _pins_by_source: dict[str, list[Pin]] = field(init=False, repr=False, compare=False)
    _blocked_by_source: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    _global: frozenset[str] = field(init=False, repr=False, compare=False)
    _expiries: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pins: dict[str, list[Pin]] = {}
        for pin in sorted(self.pins, key=lambda p: (p.slot, p.created_at)):
            pins.setdefault(pin.source, []).append(pin)
        blocked: dict[str, set[str]] = {}
        for block in self.blocks:
            if block.source is not None:
                blocked.setdefault(block.source, set()).add(block.target)
        object.__setattr__(self, "_pins_by_source", pins)
        object.__setattr__(
            self, "_blocked_by_source", {s: frozenset(t) for s, t in blocked.items()}
        )
        object.__setattr__(
            self, "_global", frozenset(b.target for b in self.blocks if b.source is None)
        )
        object.__setattr__(self, "_expiries", sorted(p.until for p in self.pins if p.until))

    def epoch(self, now: float) -> int:
        """How many pins have expired by `now`: changes exactly when a pin stops applying."""
        return bisect.bisect_right(self._expiries, now)

    def blocked(self, source: str | None) -> frozenset[str]:
        """Targets never suggested for `source` (a draft, None, gets the global blocks)."""
        if source is None:
            return self._global
        return self._global | self._blocked_by_source.get(source, frozenset())

    def pins_for(self, source: str, now: float) -> list[Pin]:
        """The pins of `source` in force at `now`, by slot, older first within a slot."""
        return [pin for pin in self._pins_by_source.get(source, ()) if pin.active(now)]


def apply_pins(
    ranked: Sequence[T], pinned: Iterable[tuple[int, T]], limit: int, key: Callable[[T], object]
) -> list[T]:
    """`ranked` with each pinned item moved or inserted at its 1-based slot, cut to `limit`.

    `pinned` must come by slot, older first within a slot (as `Overrides.pins_for` gives
    them): a later pin for the same slot pushes the earlier one down.
    """
    pinned = list(pinned)
    pinned_keys = {key(item) for _, item in pinned}
    result = [item for item in ranked if key(item) not in pinned_keys]
    for slot, item in pinned:
        result.insert(min(slot - 1, len(result)), item)
    return result[:limit]
