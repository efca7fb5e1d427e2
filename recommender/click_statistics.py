"""How often readers clicked a suggested article, corrected for its slot, smoothed and decayed:
what the `clicks` ranking signal (`recommender.signals.click_through`) scores.

Counted from the impression log's items shown and clicks (docs/learning.md, "The click
signal"). Every event weighs 2^-(age / half-life). A slot's click rate `rate[b, p]` is its
clicks over its impressions in the lists of placement b: how much readers examine slot p of a
box placed there (a box at the end of an article and one in the sidebar are looked at
differently). With few impressions it leans on every placement's rate at that slot, as if it
had `RATE_PRIOR` more of them. An item shown n_bp times at slot p of placement b is *expected*
to get E = sum_bp n_bp x rate[b, p] clicks if it were an average item; it got C. C / E
("clicks over expected clicks") says how many times the slot average it was clicked. With a
prior worth `prior` expected clicks:

    elsewhere(source, target) = (C_t - C_st + prior) / (E_t - E_st + prior)
    ratio(source, target)     = (C_st + prior x elsewhere) / (E_st + prior)
    score                     = ln ratio, clipped to +-ln MAX_RATIO

(C_t, E_t: the target's counts in every list; C_st, E_st: in the source's lists), so an item
with little evidence scores about 0 (its content score decides), a pair without evidence of
its own scores the target's ratio everywhere, and a target nobody was shown scores 0.

A `ClickTally` accumulates events (the nightly recount, then each worker's refreshes); its
`statistics` are an immutable `ClickStatistics` that requests read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from recommender.articles import DEFAULT_PLACEMENT
from recommender.ranking import SECONDS_PER_DAY
from recommender.remembered_keys import RememberedKeys

#: Slots counted apart; lower slots share the last one's click rate.
MAX_POSITION = 10
#: Impressions (decayed) at a slot of one placement worth as much as every placement's rate.
RATE_PRIOR = 100.0
#: Placements with rates of their own besides the default one: any name that fits the pattern
#: is accepted from a request, so later ones are counted as the default placement's.
MAX_PLACEMENTS = 32
#: The layout of `ClickTally.to_json`; a file of another is counted again from the log.
FORMAT = 2
#: Largest factor (and smallest, 1 / it) by which clicks move an item: score is +-ln of it.
MAX_RATIO = 4.0
#: How late an event may reach the log after it was accepted and still be counted by a worker's
#: refresh (the writer threads batch for a second or so; the nightly recount takes any).
LATE_SECONDS = 300.0

Key = tuple[str, str, str, int]


class LoggedAction(Protocol):
    """An impression item or a click as the log keeps it (`api.event_log.LoggedEvent`)."""

    @property
    def type(self) -> str: ...
    @property
    def at(self) -> float: ...
    @property
    def source(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def placement(self) -> str: ...
    def key(self) -> Key: ...


Slots = tuple[float, ...]
_ZEROS: Slots = (0.0,) * MAX_POSITION


@dataclass(frozen=True, slots=True)
class Evidence:
    """Decayed clicks and impressions by placement and slot of one pair or one target (in the
    tally's units)."""

    clicks: float
    shown: Slots
    """Impressions at slots 1..MAX_POSITION of the default placement."""
    elsewhere: tuple[tuple[str, Slots], ...] = ()
    """The same in each other placement, by name (none on most sites: nothing more held)."""

    def by_placement(self) -> Iterator[tuple[str, Slots]]:
        yield DEFAULT_PLACEMENT, self.shown
        yield from self.elsewhere

    @property
    def impressions(self) -> float:
        return sum(sum(slots) for _, slots in self.by_placement())

    def plus(self, clicked: float, placement: str, slot: int, shown: float) -> Evidence:
        if placement == DEFAULT_PLACEMENT:
            return Evidence(self.clicks + clicked, _added(self.shown, slot, shown), self.elsewhere)
        others = dict(self.elsewhere)
        others[placement] = _added(others.get(placement, _ZEROS), slot, shown)
        return Evidence(self.clicks + clicked, self.shown, tuple(sorted(others.items())))

    def merged(self, other: Evidence) -> Evidence:
        others = dict(self.elsewhere)
        for placement, slots in other.elsewhere:
            others[placement] = _summed(others.get(placement, _ZEROS), slots)
        return Evidence(
            self.clicks + other.clicks,
            _summed(self.shown, other.shown),
            tuple(sorted(others.items())),
        )


def _added(slots: Slots, slot: int, shown: float) -> Slots:
    counts = list(slots)
    counts[slot] += shown
    return tuple(counts)


def _summed(a: Slots, b: Slots) -> Slots:
    return tuple(x + y for x, y in zip(a, b, strict=True))


_NONE = Evidence(0.0, _ZEROS)


@dataclass(frozen=True, slots=True)
class Explained:
    """What the editors' page says of an item's clicks."""

    click_rate: float
    """Clicks per impression (decayed)."""
    lift: float
    """Clicks over the slot average's expected clicks (unsmoothed)."""
    impressions: float
    score: float
    """The signal's score (ln of the smoothed ratio, clipped)."""
    per_pair: bool
    """Of this source's lists (True) or of every list the target was in (False)."""


@dataclass(frozen=True, slots=True)
class ClickStatistics:
    """One immutable view of the tally at `at`: what requests read."""

    pairs: Mapping[tuple[str, str], Evidence]
    targets: Mapping[str, Evidence]
    slot_rate: Slots
    """Every placement's click rate at each slot."""
    placement_rates: Mapping[str, Slots]
    """Each placement's, leaning on `slot_rate` where it has few impressions."""
    scale: float
    """Tally units -> decayed counts at `at`."""
    prior: float
    events: int
    """How many events are counted."""
    generation: str
    """Changes whenever the counted events do (part of the cache key when it weighs)."""

    def rates(self, placement: str) -> Slots:
        """The click rate at each slot of a box in `placement`."""
        return self.placement_rates.get(placement, self.slot_rate)

    def _expected(self, evidence: Evidence) -> float:
        return self.scale * sum(
            n * r
            for placement, shown in evidence.by_placement()
            for n, r in zip(shown, self.rates(placement), strict=True)
        )

    def score(self, source: str, target: str) -> float:
        """ln of the smoothed ratio of clicks over expected clicks, within +-ln MAX_RATIO."""
        limit = math.log(MAX_RATIO)
        return min(limit, max(-limit, math.log(self.ratio(source, target))))

    def ratio(self, source: str, target: str) -> float:
        """The smoothed ratio of clicks over expected clicks (1 for a target never shown)."""
        of_target = self.targets.get(target)
        if of_target is None:
            return 1.0
        clicks, expected = self.scale * of_target.clicks, self._expected(of_target)
        pair = self.pairs.get((source, target))
        if pair is None:
            return (clicks + self.prior) / (expected + self.prior)
        own_clicks, own_expected = self.scale * pair.clicks, self._expected(pair)
        # The prior is the target's ratio in the other sources' lists.
        elsewhere = (max(0.0, clicks - own_clicks) + self.prior) / (
            max(0.0, expected - own_expected) + self.prior
        )
        return (own_clicks + self.prior * elsewhere) / (own_expected + self.prior)

    def explained(self, source: str, target: str) -> Explained | None:
        """The evidence of the pair, or else of the target; None when it was never shown."""
        pair = self.pairs.get((source, target))
        evidence = pair if pair is not None else self.targets.get(target)
        if evidence is None:
            return None
        shown = self.scale * evidence.impressions
        expected = self._expected(evidence)
        clicks = self.scale * evidence.clicks
        return Explained(
            click_rate=clicks / shown if shown else 0.0,
            lift=clicks / expected if expected else 0.0,
            impressions=shown,
            score=self.score(source, target),
            per_pair=pair is not None,
        )


class ClickTally:
    """Decayed clicks and impressions per (source, target), per target and per placement and
    slot, added to as the log grows. Each event is stored as 2^((at - reference) / half-life), so
    that adding later events needs no rescaling of earlier ones."""

    def __init__(self, half_life_days: float, reference: float) -> None:
        self.half_life_days = half_life_days
        self.reference = reference
        self.pairs: dict[tuple[str, str], Evidence] = {}
        self.targets: dict[str, Evidence] = {}
        self.slot_clicks: dict[str, list[float]] = {}
        self.slot_shown: dict[str, list[float]] = {}
        """By placement."""
        self.events = 0
        self.watermark = -math.inf
        """The latest moment of an event counted."""
        self._recent: RememberedKeys[Key, None] = RememberedKeys()
        """Keys of the events counted at `watermark` - LATE_SECONDS or later: a refresh that
        reads them again counts each once."""

    @property
    def since(self) -> float:
        """From when a refresh should read the log again: a little before the latest event
        counted, or before the tally began (`reference`, when the log was read for it)."""
        return max(self.watermark, self.reference) - LATE_SECONDS

    def _weight(self, at: float) -> float:
        return float(2.0 ** ((at - self.reference) / (self.half_life_days * SECONDS_PER_DAY)))

    def add(self, events: Iterable[LoggedAction]) -> int:
        """Count the events not counted yet; returns how many were new."""
        added = 0
        for event in events:
            key = event.key()
            if key in self._recent or event.position < 1:
                continue
            self._recent.put(key, event.at, None)
            weight = self._weight(event.at)
            slot = min(event.position, MAX_POSITION) - 1
            clicked, shown = (weight, 0.0) if event.type == "click" else (0.0, weight)
            pair, placement = (event.source, event.target), self._counted_as(event.placement)
            self.pairs[pair] = self.pairs.get(pair, _NONE).plus(clicked, placement, slot, shown)
            self.targets[event.target] = self.targets.get(event.target, _NONE).plus(
                clicked, placement, slot, shown
            )
            self.slot_clicks.setdefault(placement, [0.0] * MAX_POSITION)[slot] += clicked
            self.slot_shown.setdefault(placement, [0.0] * MAX_POSITION)[slot] += shown
            self.watermark = max(self.watermark, event.at)
            added += 1
            if self._recent.due:
                self._recent.forget_before(self.since)
        self.events += added
        # Keep the keys a refresh may read again, not the whole log's (a recount reads the log
        # in time order, and the log holds each event once).
        self._recent.forget_before(self.since)
        return added

    def _counted_as(self, placement: str) -> str:
        """`placement`, or the default one once `MAX_PLACEMENTS` others have counts."""
        if placement in self.slot_shown or placement == DEFAULT_PLACEMENT:
            return placement
        others = len(self.slot_shown) - (DEFAULT_PLACEMENT in self.slot_shown)
        return placement if others < MAX_PLACEMENTS else DEFAULT_PLACEMENT

    def statistics(self, now: float, prior: float) -> ClickStatistics:
        """An immutable view of the counts as they are at `now`."""
        scale = 1.0 / self._weight(now)
        clicks = [sum(slots) for slots in zip(_ZEROS, *self.slot_clicks.values(), strict=True)]
        shown = [sum(slots) for slots in zip(_ZEROS, *self.slot_shown.values(), strict=True)]
        rates = [c / n if n > 0 else 0.0 for c, n in zip(clicks, shown, strict=True)]
        # A slot not shown yet is examined like the lowest one shown above it.
        for slot in range(1, MAX_POSITION):
            if shown[slot] <= 0:
                rates[slot] = rates[slot - 1]
        placement_rates = {
            placement: tuple(
                (scale * c + RATE_PRIOR * r) / (scale * n + RATE_PRIOR)
                for c, n, r in zip(self.slot_clicks[placement], placed, rates, strict=True)
            )
            for placement, placed in self.slot_shown.items()
        }
        return ClickStatistics(
            pairs=dict(self.pairs),
            targets=dict(self.targets),
            slot_rate=tuple(rates),
            placement_rates=placement_rates,
            scale=scale,
            prior=prior,
            events=self.events,
            generation=f"{self.events}-{self.watermark:.3f}",
        )

    def to_json(self) -> dict[str, Any]:
        """What `from_json` reads back (the nightly recount's file)."""
        return {
            "format": FORMAT,
            "half_life_days": self.half_life_days,
            "reference": self.reference,
            "events": self.events,
            "watermark": self.watermark if self.events else None,
            "slot_clicks": self.slot_clicks,
            "slot_shown": self.slot_shown,
            "pairs": [
                [s, t, e.clicks, list(e.shown), *([dict(e.elsewhere)] if e.elsewhere else [])]
                for (s, t), e in self.pairs.items()
            ],
            "recent": [[*key, at] for key, at, _ in self._recent.items()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClickTally:
        """Raises KeyError, TypeError or ValueError for a record that is not a tally's of this
        layout (one written before slot rates per placement is counted again)."""
        if data.get("format") != FORMAT:
            raise ValueError(f"counts of layout {data.get('format', 1)}, not {FORMAT}")
        tally = cls(float(data["half_life_days"]), float(data["reference"]))
        tally.events = int(data["events"])
        tally.watermark = -math.inf if data["watermark"] is None else float(data["watermark"])
        tally.slot_clicks = {p: _slots(v) for p, v in data["slot_clicks"].items()}
        tally.slot_shown = {p: _slots(v) for p, v in data["slot_shown"].items()}
        if tally.slot_clicks.keys() != tally.slot_shown.keys():
            raise ValueError("clicks and impressions of different placements")
        for source, target, clicks, shown, *elsewhere in data["pairs"]:
            others = elsewhere[0].items() if elsewhere else ()
            evidence = Evidence(
                float(clicks),
                tuple(_slots(shown)),
                tuple(sorted((str(p), tuple(_slots(v))) for p, v in others)),
            )
            tally.pairs[(source, target)] = evidence
            tally.targets[target] = tally.targets.get(target, _NONE).merged(evidence)
        for s, i, t, p, at in data["recent"]:
            tally._recent.put((s, i, t, int(p)), float(at), None)
        return tally


def _slots(values: Iterable[Any]) -> list[float]:
    counts = [float(v) for v in values]
    if len(counts) != MAX_POSITION:
        raise ValueError("a tally of another number of slots")
    return counts
