"""The click statistics on a constructed log: clicks over the slot average's expected clicks
(position debiasing), per (source, target) and per target, smoothed towards 1 by the prior,
decayed by age; counted once however often the log is read again."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

from recommender.click_statistics import MAX_PLACEMENTS, MAX_RATIO, RATE_PRIOR, ClickTally
from recommender.ranking import SECONDS_PER_DAY
from recommender.remembered_keys import RememberedKeys

NOW = 1_765_000_000.0


@dataclass(frozen=True)
class Event:
    type: str
    at: float
    source: str
    target: str
    position: int
    impression: str
    placement: str = "default"

    def key(self) -> tuple[str, str, str, int]:
        return (self.source, self.impression, self.type, self.position)


def boxes(
    source: str,
    target: str,
    position: int,
    shown: int,
    clicked: int,
    at: float = NOW,
    placement: str = "default",
) -> list[Event]:
    """`shown` impressions of `target` at `position` in `source`'s lists in `placement`,
    `clicked` of them clicked."""
    events = []
    for n in range(shown):
        box = f"{source}-{target}-{position}-{at}-{placement}-{n}"
        events.append(Event("impression", at, source, target, position, box, placement))
        if n < clicked:
            events.append(Event("click", at, source, target, position, box, placement))
    return events


def counted(events: list[Event], half_life_days: float = 7.0) -> ClickTally:
    tally = ClickTally(half_life_days, NOW)
    tally.add(events)
    return tally


def test_clicks_are_compared_with_their_slots_average() -> None:
    # Slot 1 gets 10% of clicks, slot 3 4%: "b" at slot 3 clicked 8% is twice its slot's
    # average, "a" at slot 1 clicked 10% is the average there (its slot, not its rate, decides).
    log = [
        *boxes("s", "a", 1, 1000, 100),
        *boxes("s", "b", 3, 500, 40),
        *boxes("s", "c", 3, 500, 0),
    ]
    statistics = counted(log).statistics(NOW, prior=0.001)
    assert statistics.slot_rate[0] == pytest.approx(0.10)
    assert statistics.slot_rate[2] == pytest.approx(0.04)
    explained_b = statistics.explained("s", "b")
    assert explained_b is not None
    assert explained_b.click_rate == pytest.approx(0.08)
    assert explained_b.lift == pytest.approx(2.0)
    assert statistics.score("s", "a") == pytest.approx(0.0, abs=1e-4)
    assert statistics.score("s", "b") == pytest.approx(math.log(2.0), abs=1e-3)
    # Never clicked: the smallest factor the score allows.
    assert statistics.score("s", "c") == pytest.approx(-math.log(MAX_RATIO))


def test_each_placement_is_compared_with_its_own_slots_average() -> None:
    # Readers click slot 1 of the box at the article's end 10% of the time, of the sidebar's 2%.
    log = [
        *boxes("s", "a", 1, 5000, 500),
        *boxes("s", "b", 1, 5000, 100, placement="sidebar"),
        *boxes("s", "c", 1, 200, 8, placement="sidebar"),
        *boxes("s", "d", 1, 1000, 100),
        *boxes("s", "d", 1, 1000, 20, placement="sidebar"),
    ]
    statistics = counted(log).statistics(NOW, prior=0.001)
    assert statistics.rates("default")[0] == pytest.approx(0.1, abs=0.002)
    assert statistics.rates("sidebar")[0] == pytest.approx(0.021, abs=0.001)
    # The sidebar's average item is average (all placements' rate, 6%, would make it a third).
    assert statistics.score("s", "b") == pytest.approx(0.0, abs=0.1)
    assert statistics.score("s", "c") == pytest.approx(math.log(2.0), abs=0.1)
    # Average in both placements: its expected clicks are summed over them.
    assert statistics.score("s", "d") == pytest.approx(0.0, abs=0.1)
    explained = statistics.explained("s", "d")
    assert explained is not None and explained.impressions == pytest.approx(2000)


def test_a_placement_with_few_impressions_leans_on_every_placements_rate() -> None:
    log = [*boxes("s", "a", 1, 10_000, 1000), *boxes("s", "b", 1, 10, 0, placement="footer")]
    statistics = counted(log).statistics(NOW, prior=0.001)
    overall = 1000 / 10_010
    assert statistics.rates("footer")[0] == pytest.approx(RATE_PRIOR * overall / (10 + RATE_PRIOR))
    assert statistics.rates("never-seen") == statistics.slot_rate


def test_placements_past_the_most_kept_apart_are_counted_as_the_default_one() -> None:
    # Any name that fits the pattern is accepted from a request: a stranger naming thousands
    # must not make every worker hold rates and per-pair counts for each.
    log = [
        event
        for n in range(MAX_PLACEMENTS + 8)
        for event in boxes("s", "t", 1, 2, 1, placement=f"box-{n}")
    ]
    tally = counted(log)
    statistics = tally.statistics(NOW, prior=5.0)
    assert set(statistics.placement_rates) == {
        *(f"box-{n}" for n in range(MAX_PLACEMENTS)),
        "default",
    }
    assert len(statistics.pairs[("s", "t")].elsewhere) == MAX_PLACEMENTS
    assert statistics.pairs[("s", "t")].impressions == pytest.approx(2 * (MAX_PLACEMENTS + 8))


def test_little_evidence_scores_about_nothing_and_more_evidence_more() -> None:
    background = boxes("s", "x", 2, 20_000, 1000)  # slot 2 clicked 5% of the time
    few = counted([*background, *boxes("s", "y", 2, 10, 1)]).statistics(NOW, prior=5.0)
    many = counted([*background, *boxes("s", "y", 2, 1000, 100)]).statistics(NOW, prior=5.0)
    # Both were clicked twice their slot's average; 10 impressions barely move the item.
    assert 0 < few.score("s", "y") < 0.1
    expected = 1000 * (1000 + 100) / (20_000 + 1000)
    assert many.score("s", "y") == pytest.approx(math.log((100 + 5) / (expected + 5)))
    assert few.score("s", "nobody-showed-it") == 0.0


def test_a_pair_is_smoothed_towards_its_target_elsewhere() -> None:
    log = [
        *boxes("s1", "x", 1, 1000, 50),
        *boxes("s1", "t", 1, 1000, 150),  # t: well above the slot's average here...
        *boxes("s2", "t", 1, 1000, 50),  # ...below it there
    ]
    statistics = counted(log).statistics(NOW, prior=5.0)
    rate = 250 / 3000
    assert statistics.score("s1", "t") > 0 > statistics.score("s2", "t")
    elsewhere = (50 + 5) / (1000 * rate + 5)  # t in s2's lists, for s1
    assert statistics.score("s1", "t") == pytest.approx(
        math.log((150 + 5 * elsewhere) / (1000 * rate + 5))
    )
    # A source whose readers were never shown t: t's ratio over every list.
    assert statistics.score("s3", "t") == pytest.approx(math.log((200 + 5) / (2000 * rate + 5)))
    pooled = statistics.explained("s3", "t")
    assert pooled is not None and not pooled.per_pair
    assert pooled.click_rate == pytest.approx(0.1)


def test_old_events_count_half_after_a_half_life() -> None:
    old = NOW - 7 * SECONDS_PER_DAY
    log = [
        *boxes("s", "x", 1, 1000, 100),
        *boxes("s", "y", 1, 100, 30, at=old),  # a week ago: 50 impressions, 15 clicks now
        *boxes("s", "y", 1, 100, 0),
    ]
    statistics = counted(log, half_life_days=7).statistics(NOW, prior=0.001)
    explained = statistics.explained("s", "y")
    assert explained is not None
    assert explained.impressions == pytest.approx(150)
    assert explained.click_rate == pytest.approx(15 / 150)
    # Viewed a week later, everything counts half as much again, and the ratios hold.
    later = counted(log, half_life_days=7).statistics(NOW + 7 * SECONDS_PER_DAY, prior=0.001)
    again = later.explained("s", "y")
    assert again is not None and again.impressions == pytest.approx(75)
    assert again.lift == pytest.approx(explained.lift)


def test_events_read_again_count_once_and_the_tally_survives_its_file() -> None:
    first = [*boxes("s", "x", 1, 100, 10), *boxes("s", "x", 1, 100, 3, placement="sidebar")]
    tally = counted(first)
    later = boxes("s", "x", 2, 50, 10, at=NOW + 60)
    # A refresh reads from a little before the last event counted: those count once.
    assert tally.add([*first[-20:], *later]) == len(later)
    copy = ClickTally.from_json(tally.to_json())
    assert copy.add([*first[-5:], *later]) == 0
    assert copy.statistics(NOW, 5.0) == tally.statistics(NOW, 5.0)
    assert tally.statistics(NOW, 5.0).generation != counted(first).statistics(NOW, 5.0).generation
    before_placements = {**tally.to_json(), "format": None}
    with pytest.raises(ValueError, match="layout"):  # counted again from the log
        ClickTally.from_json(before_placements)


def test_a_busy_window_is_counted_in_linear_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # 210,000 events within a minute: more than PRUNE_AT keys, none old enough to forget.
    # Pruning must not then run again for every further event (quadratic: a 5,000 events/s
    # site's refresh took minutes per 100,000 events).
    prunings = []
    forget = RememberedKeys.forget_before

    def counted_forget(self: RememberedKeys[Any, Any], cut: float) -> None:
        prunings.append(len(self))
        if len(prunings) > 10:
            raise AssertionError("pruned again for every event")
        forget(self, cut)

    monkeypatch.setattr(RememberedKeys, "forget_before", counted_forget)
    events = [Event("impression", NOW + n / 3500, "s", "t", 1, f"box-{n}") for n in range(210_000)]
    tally = ClickTally(7.0, NOW)
    assert tally.add(events) == 210_000
    assert prunings == [100_000, 200_000, 210_000]  # at PRUNE_AT, at twice what it kept, last
