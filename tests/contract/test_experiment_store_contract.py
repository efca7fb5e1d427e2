"""One behaviour for every experiment store, SQLite and PostgreSQL: what is set is what every
handle reads, every change moves the version and the generation, and of concurrent changes
based on one version exactly one is applied."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from index.state.experiment_store import StoredExperiment
from recommender.errors import ExperimentChanged
from tests.contract.conftest import OpenStores

ARMS = [{"name": "holdout", "share": 0.5}, {"name": "b", "share": 0.5, "settings": {}}]


def test_what_one_handle_sets_another_reads(open_state: OpenStores) -> None:
    first, second = open_state().experiment, open_state().experiment
    assert second.read() == StoredExperiment(0, None)
    before = first.generation()
    written = first.write(ARMS, "ana")
    assert written.version == 1 and first.generation() != before
    second.refresh()
    read = second.read()
    assert (read.version, read.arms, read.actor) == (1, ARMS, "ana")
    assert read.changed_at == written.changed_at
    stopped = second.write(None, "ben", based_on=1)
    assert (stopped.version, stopped.arms) == (2, None)
    assert first.read().arms is None and first.read().version == 2


def test_a_change_based_on_an_old_version_is_refused(open_state: OpenStores) -> None:
    store = open_state().experiment
    store.write(ARMS, "ana", based_on=0)
    with pytest.raises(ExperimentChanged, match="version 1, not 0"):
        store.write(None, "ben", based_on=0)
    assert store.read().arms == ARMS


def test_of_concurrent_changes_based_on_one_version_exactly_one_applies(
    open_state: OpenStores,
) -> None:
    handles = [open_state().experiment for _ in range(6)]

    def change(number: int) -> int | None:
        arms = [{"name": "holdout", "share": 0.5}, {"name": f"arm{number}", "share": 0.5}]
        try:
            return handles[number].write(arms, f"editor{number}", based_on=0).version
        except ExperimentChanged:
            return None

    with ThreadPoolExecutor(len(handles)) as pool:
        results = list(pool.map(change, range(len(handles))))
    applied = [number for number, version in enumerate(results) if version is not None]
    assert len(applied) == 1 and results[applied[0]] == 1
    final = handles[0].read()
    assert final.version == 1 and final.actor == f"editor{applied[0]}"
