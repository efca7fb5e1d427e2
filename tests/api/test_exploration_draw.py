"""The ε-swap draw and its propensities, on fixed impression ids (so every run is the same)."""

from __future__ import annotations

from collections import Counter

import pytest

from api.serving.exploration_draw import (
    SHARE_STEPS,
    ExplorationPlan,
    Swap,
    draw,
    exploration_plan,
    parse_segment,
    shown_at,
)

IDS = [f"{i:032x}" for i in range(0, 20_000 * 7919, 7919)]


def test_the_share_of_exploring_boxes_is_the_setting() -> None:
    for share in (500, 2_000):
        plan = ExplorationPlan(share, 4, 3, frozenset())
        explored = sum(draw(plan, impression) is not None for impression in IDS)
        expected = len(IDS) * share / SHARE_STEPS
        sd = (expected * (1 - share / SHARE_STEPS)) ** 0.5
        # Six standard deviations: a fixed set of ids, and a bound no fair draw comes near.
        assert abs(explored - expected) < 6 * sd


def test_an_exploring_box_picks_free_slots_and_reserves_evenly() -> None:
    plan = ExplorationPlan(SHARE_STEPS // 2, 5, 3, frozenset({2, 4}))
    swaps = [swap for impression in IDS if (swap := draw(plan, impression)) is not None]
    slots = Counter(swap.slot for swap in swaps)
    reserves = Counter(swap.reserve for swap in swaps)
    assert set(slots) == {1, 3, 5}  # never a pinned slot
    assert set(reserves) == {1, 2, 3}
    for counts, n in ((slots, 3), (reserves, 3)):
        expected = len(swaps) / n
        sd = (expected * (1 - 1 / n)) ** 0.5
        assert all(abs(count - expected) < 6 * sd for count in counts.values())


def test_a_draw_is_a_fixed_function_of_the_impression_id() -> None:
    plan = ExplorationPlan(SHARE_STEPS, 4, 3, frozenset())
    assert [draw(plan, impression) for impression in IDS[:50]] == [
        draw(plan, impression) for impression in IDS[:50]
    ]
    assert len({draw(plan, impression) for impression in IDS[:50]}) == 12  # every (slot, reserve)
    assert draw(ExplorationPlan(0, 4, 3, frozenset()), IDS[0]) is None
    # A known answer, computed with widget.js's `draw` under node: [free slot 1, reserve 1].
    assert draw(plan, "0123456789abcdef0123456789abcdef") == Swap(2, 2)


@pytest.mark.parametrize("pinned", [frozenset(), frozenset({1}), frozenset({2, 3})])
def test_propensities_are_exact_and_each_slot_shows_one_item(pinned: frozenset[int]) -> None:
    share, shown, reserves = 1_500, 4, 3
    plan = ExplorationPlan(share, shown, reserves, pinned)
    free = shown - len(pinned)
    epsilon = share / SHARE_STEPS
    for slot in range(1, shown + 1):
        # Summed over what a slot can show, the probabilities make 1.
        deterministic = shown_at(plan, "a-box-that-does-not-matter", slot)
        assert deterministic is not None
        if slot in pinned:
            assert deterministic.propensity == 1
            continue
        stays = (1 - epsilon) + epsilon * (1 - 1 / free)
        reserve = epsilon / (free * reserves)
        assert stays + reserves * reserve == pytest.approx(1)
        seen = {shown_at(plan, impression, slot) for impression in IDS[:2_000]}
        assert {s.propensity for s in seen if s is not None} == {stays, reserve}
        assert {s.entry for s in seen if s is not None} == {slot, *range(shown + 1, shown + 4)}
    assert shown_at(plan, IDS[0], shown + 1) is None
    assert shown_at(plan, IDS[0], 0) is None
    assert shown_at(None, IDS[0], 7) is not None


def test_plans_round_trip_and_lists_that_cannot_vary_have_none() -> None:
    plan = exploration_plan(500, 4, 3, [3, 1])
    assert plan is not None and plan.segment() == "E500S4R3P1_3"
    assert parse_segment(plan.segment()) == plan
    assert parse_segment("E500S4R3") == ExplorationPlan(500, 4, 3, frozenset())
    assert exploration_plan(0, 4, 3, []) is None
    assert exploration_plan(500, 4, 0, []) is None
    assert exploration_plan(500, 2, 3, [1, 2]) is None
    for bad in ("E500S4", "E500S4R3P", "X500S4R3", "E500S4R0", "E500S2R3P1_2"):
        assert parse_segment(bad) is None
