"""Pins and blocks as pure rules: expiry, global blocks, slot placement."""

from __future__ import annotations

from recommender.overrides import Block, Overrides, Pin, apply_pins


def pin(target: str, slot: int, until: float | None = None, created: float = 0.0) -> Pin:
    return Pin("source", target, slot, until, None, "ed", created)


def test_a_pin_applies_until_its_moment_and_then_stops_by_itself() -> None:
    overrides = Overrides(pins=[pin("a", 1, until=100.0), pin("b", 2)])
    assert [p.target for p in overrides.pins_for("source", now=99.0)] == ["a", "b"]
    assert [p.target for p in overrides.pins_for("source", now=100.0)] == ["b"]
    assert overrides.pins_for("elsewhere", now=0.0) == []


def test_the_expiry_epoch_moves_exactly_when_a_pin_expires() -> None:
    overrides = Overrides(pins=[pin("a", 1, until=100.0), pin("b", 1, until=200.0), pin("c", 3)])
    assert [overrides.epoch(t) for t in (0, 99.9, 100, 150, 200, 10_000)] == [0, 0, 1, 1, 2, 2]


def test_global_blocks_apply_to_every_source_and_to_drafts() -> None:
    overrides = Overrides(
        blocks=[
            Block(None, "legal-hold", None, "ed", 0.0),
            Block("source", "off-topic", None, "ed", 0.0),
        ]
    )
    assert overrides.blocked("source") == {"legal-hold", "off-topic"}
    assert overrides.blocked("other") == {"legal-hold"}
    assert overrides.blocked(None) == {"legal-hold"}


def test_a_pinned_item_moves_to_its_slot_and_the_list_keeps_its_length() -> None:
    ranked = ["a", "b", "c", "d"]
    assert apply_pins(ranked, [(1, "c")], 4, key=str) == ["c", "a", "b", "d"]
    assert apply_pins(ranked, [(2, "new")], 4, key=str) == ["a", "new", "b", "c"]


def test_a_pin_beyond_the_requested_length_is_not_shown() -> None:
    assert apply_pins(["a", "b", "c"], [(5, "x")], 3, key=str) == ["a", "b", "c"]
    # A short list (filters starved it) still shows the pin at its end.
    assert apply_pins(["a"], [(5, "x")], 3, key=str) == ["a", "x"]


def test_the_newer_of_two_pins_for_one_slot_wins_it() -> None:
    overrides = Overrides(pins=[pin("newer", 1, created=2.0), pin("older", 1, created=1.0)])
    pinned = [(p.slot, p.target) for p in overrides.pins_for("source", now=0.0)]
    assert apply_pins(["a", "b"], pinned, 3, key=str) == ["newer", "older", "a"]
