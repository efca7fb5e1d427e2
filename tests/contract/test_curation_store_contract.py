"""One behaviour for every curation store: pins, blocks and their audit trail, the same on
SQLite and on PostgreSQL (each test runs on both)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from index.state.curation_store import AuditRecord, CurationStore
from recommender.errors import OverrideNotFound, UndoConflict
from tests.contract.conftest import OpenStores

T = TypeVar("T")


@pytest.fixture
def store(open_state: OpenStores) -> Iterator[CurationStore]:
    yield open_state().curation


def test_changes_survive_reopening_the_store(open_state: OpenStores) -> None:
    first = open_state()
    first.curation.pin("a", "b", 2, None, "editor's choice", "ana")
    first.curation.block(None, "c", "legal hold", "ben")
    first.close()
    snapshot = open_state().curation.snapshot()
    assert [(p.source, p.target, p.slot, p.reason, p.actor) for p in snapshot.pins] == [
        ("a", "b", 2, "editor's choice", "ana")
    ]
    assert snapshot.blocked("anything") == {"c"}


def test_every_change_moves_the_generation(store: CurationStore) -> None:
    seen = {store.generation()}
    store.pin("a", "b", 1, None, None, "ana")
    seen.add(store.generation())
    store.block("a", "c", None, "ana")
    seen.add(store.generation())
    store.unpin("a", "b", "ana")
    seen.add(store.generation())
    assert len(seen) == 4
    assert store.snapshot().generation == store.generation()


def test_the_audit_trail_says_who_did_what_when_and_why(store: CurationStore) -> None:
    store.pin("a", "b", 1, None, "best follow-up", "ana")
    store.block("a", "c", "off topic", "ben")
    store.block(None, "d", "legal hold", "cy")
    records = store.audit()
    assert [(r.action, r.actor, r.source, r.target, r.reason) for r in records] == [
        ("block", "cy", None, "d", "legal hold"),
        ("block", "ben", "a", "c", "off topic"),
        ("pin", "ana", "a", "b", "best follow-up"),
    ]
    assert records[0].at >= records[-1].at
    assert [r.target for r in store.audit("a")] == ["c", "b"]
    assert [r.action for r in store.audit("d")] == ["block"]


def test_the_audit_trail_is_filtered_and_paged(store: CurationStore) -> None:
    store.pin("a", "b", 1, None, None, "ana")
    store.block(None, "d", "legal hold", "ben")
    store.block("a", "c", None, "ben")
    store.block("x", "y", None, "ana")
    assert [r.target for r in store.audit("a", everywhere=True)] == ["c", "d", "b"]
    assert [r.target for r in store.audit(action="block", actor="ben")] == ["c", "d"]
    first = store.audit(limit=2)
    assert [r.target for r in first] == ["y", "c"]
    assert [r.target for r in store.audit(limit=2, before=first[-1].id)] == ["d", "b"]


def test_undo_reverses_each_kind_of_change(store: CurationStore) -> None:
    _, pinned = store.pin("a", "b", 1, None, None, "ana")
    store.undo(pinned.id, "ana")
    assert store.pins("a") == []

    store.pin("a", "b", 3, None, None, "ana")
    unpinned = store.unpin("a", "b", "ana")
    store.undo(unpinned.id, "ben")
    assert [(p.target, p.slot) for p in store.pins("a")] == [("b", 3)]

    _, blocked = store.block(None, "c", "hold", "ana")
    undo = store.undo(blocked.id, "ben")
    assert store.blocks(global_only=True) == []
    assert (undo.action, undo.actor, undo.source, undo.target) == ("unblock", "ben", None, "c")
    assert store.record(blocked.id).undone_by == undo.id
    store.undo(undo.id, "ana")  # an undo can itself be undone
    assert [b.target for b in store.blocks(global_only=True)] == ["c"]


def test_undoing_a_replacing_pin_restores_the_pin_it_replaced(store: CurationStore) -> None:
    store.pin("a", "b", 1, None, "first", "ana")
    _, moved = store.pin("a", "b", 4, None, "second", "ben")
    store.undo(moved.id, "ana")
    assert [(p.slot, p.reason) for p in store.pins("a")] == [(1, "first")]


def test_a_change_is_undone_once(store: CurationStore) -> None:
    _, pinned = store.pin("a", "b", 1, None, None, "ana")
    store.undo(pinned.id, "ana")
    with pytest.raises(UndoConflict):
        store.undo(pinned.id, "ana")
    with pytest.raises(OverrideNotFound):
        store.undo(9999, "ana")


def test_removing_what_is_not_there_is_an_error(store: CurationStore) -> None:
    with pytest.raises(OverrideNotFound):
        store.unpin("a", "b", "ana")
    with pytest.raises(OverrideNotFound):
        store.unblock(None, "b", "ana")
    store.block("a", "b", None, "ana")
    with pytest.raises(OverrideNotFound):  # a block for one source is not a global block
        store.unblock(None, "b", "ana")


def race(
    open_state: OpenStores, change: Callable[[CurationStore], T], *, one_handle: bool = False
) -> list[T | Exception]:
    """`change` made at the same moment by two stores on one database (as two workers do), or
    by two threads through one store (as two requests of one worker do)."""
    handles = [open_state()] if one_handle else [open_state(), open_state()]
    stores = [handle.curation for handle in handles] * (2 if one_handle else 1)
    barrier = threading.Barrier(len(stores))

    def make(store: CurationStore) -> T | Exception:
        barrier.wait()
        try:
            return change(store)
        except (UndoConflict, OverrideNotFound) as refused:
            return refused

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            return list(pool.map(make, stores))
    finally:
        for handle in handles:
            handle.close()


@pytest.mark.parametrize("one_handle", [False, True], ids=["two-workers", "two-threads"])
def test_of_two_simultaneous_undos_of_one_change_exactly_one_wins(
    store: CurationStore, open_state: OpenStores, one_handle: bool
) -> None:
    for round_ in range(40):
        _, pinned = store.pin("a", f"b{round_}", 1, None, None, "ana")

        def undo(s: CurationStore, pinned: AuditRecord = pinned) -> object:
            return s.undo(pinned.id, "ben")

        outcomes = race(open_state, undo, one_handle=one_handle)
        assert sorted(type(o).__name__ for o in outcomes) == ["AuditRecord", "UndoConflict"]
        undos = [r for r in store.audit() if r.reason == f"undo of #{pinned.id}"]
        assert len(undos) == 1  # no orphan "undo" record
        assert store.record(pinned.id).undone_by == undos[0].id


def test_of_two_simultaneous_pins_of_one_pair_the_second_records_the_first_as_replaced(
    store: CurationStore, open_state: OpenStores
) -> None:
    for round_ in range(40):
        target = f"b{round_}"

        def pin(s: CurationStore, target: str = target) -> object:
            return s.pin("a", target, 1, None, None, "ana")

        race(open_state, pin)
        first, second = sorted(store.audit(target), key=lambda r: r.id)
        assert first.detail["replaced"] is None
        assert second.detail["replaced"] == first.detail["pin"]
