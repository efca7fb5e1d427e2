"""The live, curation, session and experiment stores of one process, on the backend the
settings choose: the shared PostgreSQL database when `RECOMMENDER_DATABASE_URL` is set, else
SQLite files in the data directory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from index.index_errors import ReindexLocked
from index.state.curation_store import CurationStore
from index.state.experiment_store import ExperimentStore
from index.state.live_store import LiveStore
from index.state.session_store import SessionStore
from recommender.settings import IndexSettings

if TYPE_CHECKING:  # psycopg is imported only where a database is named: it takes 0.1-0.2 s
    from index.state.postgres_database import PostgresState


@dataclass(frozen=True, slots=True)
class StateStores:
    live: LiveStore
    curation: CurationStore
    sessions: SessionStore
    experiment: ExperimentStore
    postgres: PostgresState | None
    """The shared database's pool, when there is one."""

    @property
    def shared(self) -> bool:
        """Whether the stores are shared by every host (PostgreSQL), not one data directory."""
        return self.postgres is not None

    def refresh(self) -> None:
        """Learn the shared generations now (raises StoreUnavailable)."""
        self.live.refresh()
        self.curation.refresh()
        self.experiment.refresh()

    @contextmanager
    def reindex_lock(self) -> Iterator[None]:
        """Hold the shared database's reindex lock (so that of two hosts' reindexes one
        publishes), or raise ReindexLocked at once; nothing to hold on SQLite."""
        if self.postgres is None:
            yield
            return
        from index.state.postgres_database import REINDEX_LOCK

        with self.postgres.exclusive(REINDEX_LOCK) as taken:
            if not taken:
                raise ReindexLocked("another host's reindex holds the shared database's lock")
            yield

    def close(self) -> None:
        self.live.close()
        self.curation.close()
        self.sessions.close()
        self.experiment.close()
        if self.postgres is not None:
            self.postgres.close()


def open_stores(settings: IndexSettings, *, clock: Callable[[], float] = time.time) -> StateStores:
    """The stores `settings` name; PostgreSQL's schema is brought up to date first. `clock`
    is the wall clock of editors' sessions (tests pass a fake one)."""
    if settings.database.url is None:
        return StateStores(
            live=LiveStore.in_directory(settings.data_dir),
            curation=CurationStore.in_directory(settings.data_dir),
            sessions=SessionStore.in_directory(settings.data_dir, clock),
            experiment=ExperimentStore.in_directory(settings.data_dir),
            postgres=None,
        )
    from index.state.postgres_database import PostgresState

    postgres = PostgresState(settings.database)
    stores = StateStores(
        live=LiveStore(postgres.view("live")),
        curation=CurationStore(postgres.view("curation")),
        sessions=SessionStore(postgres.view("sessions"), clock),
        experiment=ExperimentStore(postgres.view("experiment")),
        postgres=postgres,
    )
    stores.refresh()
    return stores
