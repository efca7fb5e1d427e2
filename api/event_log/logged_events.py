"""One accepted impression item or click as the impression log keeps it (`LoggedEvent`), and
the interface of the log's backends (`EventLog`).

An impression is logged as one record per item shown (its position, target and propensity);
a click references its impression by id and position. Records are identified by
(source, impression, type, position): writing one twice, from any worker, keeps one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

EventType = Literal["impression", "click"]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An impression item or a click, with what ranked the list it belongs to."""

    type: EventType
    at: float
    """When it was accepted (UNIX seconds, UTC)."""
    source: str
    impression: str
    position: int
    target: str
    placement: str
    arm: str
    version: str
    propensity: float | None
    """The probability that the arm shows `target` at `position` (1 for a deterministic
    ranking); None for a click."""

    @property
    def day(self) -> date:
        """The UTC day it belongs to (its file, or the partition key that retention prunes)."""
        return utc_day(self.at)

    def key(self) -> tuple[str, str, str, int]:
        """What makes it the same event: written twice, it is kept once."""
        return (self.source, self.impression, self.type, self.position)

    def record(self) -> dict[str, Any]:
        """Its fields as JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> LoggedEvent:
        return cls(**record)


def utc_day(moment: float) -> date:
    """The UTC day of a moment in UNIX seconds."""
    return datetime.fromtimestamp(moment, UTC).date()


def first_kept_day(today: date, retention_days: int) -> date:
    """The oldest UTC day a log keeping `retention_days` days (today included) still holds."""
    return date.fromordinal(today.toordinal() - retention_days + 1)


class EventLog(Protocol):
    """Where the impression log lives. Calls block (a writer thread makes them); a backend
    failure raises `index.index_errors.StoreUnavailable` (database) or `StorageError` (files)."""

    def write(self, events: Sequence[LoggedEvent]) -> int:
        """Append `events`, skipping any whose `key` is logged already; returns how many were
        new."""

    def read(self, since: date, until: date) -> Iterator[LoggedEvent]:
        """The events of UTC days `since`..`until` (both included), day by day, streamed."""

    def read_since(self, since: float) -> Iterator[LoggedEvent]:
        """The events accepted at `since` (UNIX seconds) or later, streamed: what a worker adds
        to its click counts. A record still being written may come at the next read."""

    def clicks_read_since(self, since: float) -> Iterator[LoggedEvent]:
        """The clicks accepted at `since` (UNIX seconds) or later, streamed: what makes an
        article popular. A record still being written may come at the next read."""

    def prune(self, first_kept: date) -> int:
        """Delete every day before `first_kept`; returns how many events (files: days) went."""

    def close(self) -> None: ...
