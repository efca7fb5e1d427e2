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


def test_an_exploring_box_picks_its_slot_and_partner_evenly() -> None:
    """Slot, then a partner among the other free slots and the reserves: the 3 x 5 pairs of
    this plan are equally likely, and a pinned slot is neither."""
    plan = ExplorationPlan(SHARE_STEPS // 2, 5, 3, frozenset({2, 4}))
    swaps = [swap for impression in IDS if (swap := draw(plan, impression)) is not None]
    pairs = Counter((swap.slot, swap.entry) for swap in swaps)
    assert {slot for slot, _ in pairs} == {1, 3, 5}  # never a pinned slot
    assert set(pairs) == {
        (slot, entry) for slot in (1, 3, 5) for entry in (1, 3, 5, 6, 7, 8) if entry != slot
    }
    expected = len(swaps) / 15
    sd = (expected * (1 - 1 / 15)) ** 0.5
    assert all(abs(count - expected) < 6 * sd for count in pairs.values())


def test_a_draw_is_a_fixed_function_of_the_impression_id() -> None:
    plan = ExplorationPlan(SHARE_STEPS, 4, 3, frozenset())
    assert [draw(plan, impression) for impression in IDS[:50]] == [
        draw(plan, impression) for impression in IDS[:50]
    ]
    # Every (slot, partner): 4 slots x (3 other slots + 3 reserves).
    assert len({draw(plan, impression) for impression in IDS[:1_000]}) == 24
    assert draw(ExplorationPlan(0, 4, 3, frozenset()), IDS[0]) is None
    # A known answer, computed with widget.js's `draw` under node: [free slot 1, partner 1],
    # so slots 2 and 3 trade their items.
    assert draw(plan, "0123456789abcdef0123456789abcdef") == Swap(2, 3)


@pytest.mark.parametrize("pinned", [frozenset(), frozenset({1}), frozenset({2, 3})])
def test_propensities_are_exact_and_each_slot_shows_one_item(pinned: frozenset[int]) -> None:
    share, shown, reserves = 1_500, 4, 3
    plan = ExplorationPlan(share, shown, reserves, pinned)
    free_slots = [slot for slot in range(1, shown + 1) if slot not in pinned]
    free = len(free_slots)
    epsilon = share / SHARE_STEPS
    pairs = free * (free - 1 + reserves)
    for slot in range(1, shown + 1):
        # Summed over what a slot can show, the probabilities make 1.
        deterministic = shown_at(plan, "a-box-that-does-not-matter", slot)
        assert deterministic is not None
        if slot in pinned:
            assert deterministic.propensity == 1
            continue
        stays = (1 - epsilon) + epsilon * (1 - 1 / free - (free - 1) / pairs)
        reserve = epsilon / pairs
        traded = 2 * epsilon / pairs
        assert stays + (free - 1) * traded + reserves * reserve == pytest.approx(1)
        seen = {shown_at(plan, impression, slot) for impression in IDS[:4_000]}
        assert {s.propensity for s in seen if s is not None} == {stays, reserve, traded}
        assert {s.entry for s in seen if s is not None} == {
            *free_slots,
            *range(shown + 1, shown + 4),
        }
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
