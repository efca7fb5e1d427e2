"""The state stores' backends, for the contract suites that run the same calls on each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from index.state.state_stores import StateStores, open_stores
from recommender.settings import IndexSettings
from tests.support.helpers import fake_settings


class OpenStores:
    """Opens the stores of one database; each call is another handle on the same state, as
    another worker or host has. Closes every handle it opened."""

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self._opened: list[StateStores] = []

    def __call__(self) -> StateStores:
        stores = open_stores(self.settings)
        self._opened.append(stores)
        return stores

    def close(self) -> None:
        for stores in self._opened:
            stores.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStores]:
    """The stores of SQLite in `tmp_path`, or of a throwaway PostgreSQL database. These suites
    race writes, not the clock: a call may wait 10 s for a connection (a pool growing on a
    loaded machine), where the 2 s default is for serving."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = fake_settings(tmp_path / "data", database_url=url, database_timeout_seconds=10)
    opener = OpenStores(settings.index)
    yield opener
    opener.close()
