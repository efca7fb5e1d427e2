"""The A/B experiment every worker serves, durable beside the curation store.

One row (`DATA_DIR/experiment.sqlite3`, or the shared PostgreSQL database's `experiment`
table): the arms as JSON (none: no experiment runs), who set them and when, and a version that
every change moves by one. A change names the version it was based on, and is checked and
written in one transaction (the store's write lock is held from its first statement), so of two
changes based on the same version one is applied and the other refused (`ExperimentChanged`).
What the arms mean is `api.serving.experiment_arms`'s business: this store keeps them as given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from index.state.database_store import DatabaseStore
from recommender.errors import ExperimentChanged

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiment (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    arms TEXT,
    actor TEXT NOT NULL,
    changed_at REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredExperiment:
    version: int
    """0 before the first change; moves by one with every change, a stop included."""
    arms: list[dict[str, Any]] | None
    """As set (None: no experiment runs)."""
    actor: str | None = None
    changed_at: float | None = None
    """When it was set (or stopped): the experiment's figures count the events from then on."""


class ExperimentStore(DatabaseStore):
    """The experiment in force, shared by every process using the same database."""

    SQLITE_FILE = "experiment.sqlite3"
    GENERATION_FILE = "experiment.generation"
    SCHEMA = SCHEMA

    def read(self) -> StoredExperiment:
        """The experiment as stored now (version 0 and no arms before the first change)."""
        rows = self._db.execute("SELECT version, arms, actor, changed_at FROM experiment")
        if not rows:
            return StoredExperiment(0, None)
        version, arms, actor, changed_at = rows[0]
        return StoredExperiment(
            int(version), None if arms is None else orjson.loads(arms), actor, changed_at
        )

    def write(
        self, arms: list[dict[str, Any]] | None, actor: str, based_on: int | None = None
    ) -> StoredExperiment:
        """Set the arms (None: stop the experiment) if the stored version is still `based_on`
        (None: whatever it is); raises ExperimentChanged otherwise."""
        with self._db.transaction():
            rows = self._db.execute("SELECT version FROM experiment")
            version = int(rows[0][0]) if rows else 0
            if based_on is not None and based_on != version:
                raise ExperimentChanged(
                    f"the experiment is at version {version}, not {based_on}: reload it and "
                    "make the change again"
                )
            written = StoredExperiment(version + 1, arms, actor, time.time())
            self._db.execute(
                "INSERT INTO experiment (id, version, arms, actor, changed_at) "
                "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
                "arms = excluded.arms, actor = excluded.actor, changed_at = excluded.changed_at",
                (
                    written.version,
                    None if arms is None else orjson.dumps(arms).decode(),
                    actor,
                    written.changed_at,
                ),
            )
        return written
