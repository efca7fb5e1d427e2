"""One base for what tests start and stop: a server process, a cluster of them, a proxy."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class ManagedService(ABC):
    """Runs from `start()` to `stop()`, and is released for good by `close()`.

    As a context manager it starts on entry and closes on exit; a start that fails half-way
    is closed before its error goes on. `close()` is safe before `start()`, after `stop()` and
    twice, so a fixture may register it as a finalizer *before* starting: a test run that
    crashes mid-start still leaves nothing behind.
    """

    @abstractmethod
    def start(self) -> None:
        """Start, and return once the service answers."""

    @abstractmethod
    def stop(self) -> None:
        """Stop gracefully; a no-op when not running."""

    def close(self) -> None:
        """Stop and free what the service holds beyond a run (by default, nothing more)."""
        self.stop()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
