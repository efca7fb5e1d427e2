"""Safe exploration by ε-swap: what a box showed at each slot, and with which probability.

A list asked for with `explore=true` carries, besides its items, `RESERVES` reserve candidates
(the next ones of the same ranking, so every filter, block, retraction and embargo holds) and
an `ExplorationPlan`, both signed into its feedback token. The client (widget.js) draws, from
the impression id it draws per box, whether the box explores (probability `share`) and if so
one unpinned slot and a partner for it, uniformly among the other unpinned slots and the
reserves: the slot and an unpinned partner exchange their items, a reserve takes the slot. So
every item of the list and every reserve reaches every unpinned slot with a known probability,
which is what lets `recommender evaluate-policy` judge rankings that reorder the list. The draw
is a fixed function of the impression id, so the service recomputes it when a beacon arrives:
an event counts only for the item the draw put at that slot, and is logged with that item's
exact propensity.
`static/widget.js` implements the same draw (`tests/browser/test_widget_exploration.py` checks
they agree); docs/learning.md gives the formulas.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: The share is drawn in whole steps of 1/10,000, so both sides compare integers exactly.
SHARE_STEPS = 10_000
#: Reserve candidates an exploring list carries.
RESERVES = 3

_MASK = 0xFFFFFFFF
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_SEGMENT = re.compile(
    r"E(?P<share>\d{1,5})S(?P<shown>\d{1,2})R(?P<reserves>\d{1,2})"
    r"(?:P(?P<pinned>\d{1,2}(?:_\d{1,2})*))?"
)


@dataclass(frozen=True, slots=True)
class ExplorationPlan:
    """How a list may be varied: `share` in steps of 1/`SHARE_STEPS`, the `shown` slots of the
    list, how many `reserves` follow them, and the editors' `pinned` slots, never varied."""

    share: int
    shown: int
    reserves: int
    pinned: frozenset[int]

    @property
    def free_slots(self) -> list[int]:
        """The slots a reserve may take, in order."""
        return [slot for slot in range(1, self.shown + 1) if slot not in self.pinned]

    def segment(self) -> str:
        """The plan as written into a token header (`E500S4R3P1_3`)."""
        pins = "_".join(str(slot) for slot in sorted(self.pinned))
        return f"E{self.share}S{self.shown}R{self.reserves}" + (f"P{pins}" if pins else "")


def exploration_plan(
    share: int, shown: int, reserves: int, pinned: Sequence[int]
) -> ExplorationPlan | None:
    """The plan of a list, or None where nothing can vary (no share, reserve or free slot)."""
    plan = ExplorationPlan(share, shown, reserves, frozenset(pinned))
    if share <= 0 or reserves <= 0 or not plan.free_slots:
        return None
    return plan


def parse_segment(segment: str) -> ExplorationPlan | None:
    """The plan `ExplorationPlan.segment` wrote, or None when `segment` is not one."""
    parsed = _SEGMENT.fullmatch(segment)
    if parsed is None:
        return None
    pinned = frozenset(int(slot) for slot in (parsed["pinned"] or "").split("_") if slot)
    return exploration_plan(
        int(parsed["share"]), int(parsed["shown"]), int(parsed["reserves"]), sorted(pinned)
    )


class _Draws:
    """32-bit draws seeded by an impression id: FNV-1a over its characters, then mulberry32
    (widget.js has the same few lines)."""

    def __init__(self, impression: str) -> None:
        state = _FNV_OFFSET
        for byte in impression.encode("ascii"):
            state = ((state ^ byte) * _FNV_PRIME) & _MASK
        self._state = state

    def _next(self) -> int:
        self._state = (self._state + 0x6D2B79F5) & _MASK
        value = self._state
        value = ((value ^ (value >> 15)) * (value | 1)) & _MASK
        value ^= (value + (((value ^ (value >> 7)) * (value | 61)) & _MASK)) & _MASK
        return (value ^ (value >> 14)) & _MASK

    def below(self, bound: int) -> int:
        """Uniform in [0, bound) exactly: draws past the last whole multiple are drawn again."""
        limit = (1 << 32) - (1 << 32) % bound
        while True:
            value = self._next()
            if value < limit:
                return value % bound


@dataclass(frozen=True, slots=True)
class Swap:
    """An exploring box: `slot` shows the token's entry `entry`: another unpinned slot's item
    (entry ≤ the list's length; that slot then shows `slot`'s item), or reserve number
    `entry` - `shown`."""

    slot: int
    entry: int


def draw(plan: ExplorationPlan, impression: str) -> Swap | None:
    """The swap of the box `impression` under `plan`, or None when it does not explore."""
    draws = _Draws(impression)
    if draws.below(SHARE_STEPS) >= plan.share:
        return None
    free = plan.free_slots
    first = draws.below(len(free))
    partner = draws.below(len(free) - 1 + plan.reserves)
    if partner < len(free) - 1:  # another unpinned slot: the two exchange their items
        return Swap(free[first], free[partner if partner < first else partner + 1])
    return Swap(free[first], plan.shown + partner - (len(free) - 1) + 1)


@dataclass(frozen=True, slots=True)
class Shown:
    """What a box showed at a slot: `entry` of the token's signed entries (a slot of the list,
    or `shown` + the reserve's number), with the `propensity` of showing it there."""

    entry: int
    propensity: float


def shown_at(plan: ExplorationPlan | None, impression: str, slot: int) -> Shown | None:
    """What the box `impression` showed at `slot` (None: the list has no such slot)."""
    if plan is None:
        return Shown(slot, 1.0)
    if not 1 <= slot <= plan.shown:
        return None
    if slot in plan.pinned:
        return Shown(slot, 1.0)
    share = plan.share / SHARE_STEPS
    free = len(plan.free_slots)
    pairs = free * (free - 1 + plan.reserves)  # (slot, partner) draws, each equally likely
    swap = draw(plan, impression)
    if swap is not None and slot in (swap.slot, swap.entry):
        exchanged = swap.entry <= plan.shown
        shown = swap.entry if slot == swap.slot else swap.slot
        # An exchange of two slots is drawn from either side: twice as likely as one reserve.
        return Shown(shown, share * (2 if exchanged else 1) / pairs)
    moved = 1 / free + (free - 1) / pairs  # drawn as the slot, or as another slot's partner
    return Shown(slot, (1 - share) + share * (1 - moved))


#: Salts the arm draw, so that it is independent of the same id's exploration draw.
ARM_SALT = "arm:"


def arm_draw(impression: str) -> int:
    """The draw in 0..`SHARE_STEPS` - 1 that picks the experiment arm of the box `impression`
    (`api.serving.experiment_arms`; widget.js draws the same)."""
    return _Draws(ARM_SALT + impression).below(SHARE_STEPS)
