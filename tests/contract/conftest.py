"""The state stores' backends, for the contract suites that run the same calls on each."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from index.state.state_stores import StateStores, open_stores
from tests.support.helpers import fake_settings

OpenStores = Callable[[], StateStores]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStores]:
    """Opens the stores of one database (SQLite in `tmp_path`, or a throwaway PostgreSQL
    database); each call is another handle on the same state, as another worker or host has."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = fake_settings(tmp_path, database_url=url).index
    opened: list[StateStores] = []

    def make() -> StateStores:
        stores = open_stores(settings)
        opened.append(stores)
        return stores

    yield make
    for stores in opened:
        stores.close()
