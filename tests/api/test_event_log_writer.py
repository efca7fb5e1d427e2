"""The impression log's writer never makes a request wait: a full queue drops events and counts
them, a failing backend is retried, and retention prunes old days when it starts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest

from api.event_log.event_log_writer import EventLogWriter
from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import LoggedEvent
from index.index_errors import StoreUnavailable
from recommender.settings import EventLogSettings
from tests.support.event_log_records import at, impression

NOW = at(date(2026, 12, 6), 43_200)


class GatedLog(FileEventLog):
    """A file log whose writes wait for `gate`, and fail `failures` times first: a slow or
    broken backend at the I/O edge."""

    def __init__(self, data_dir: Path, failures: int = 0) -> None:
        super().__init__(data_dir)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.failures = failures

    def write(self, events: Sequence[LoggedEvent]) -> int:
        self.entered.set()
        self.gate.wait(30)
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("the shared database is unavailable; try again shortly")
        return super().write(events)


async def settled(writer: EventLogWriter) -> None:
    for _ in range(3000):
        if writer.pending() == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{writer.pending()} events still pending")


def boxes(count: int) -> list[LoggedEvent]:
    return [e for n in range(count) for e in impression(f"box-{n:016d}", targets="a")]


def test_a_full_queue_drops_and_counts_without_waiting(tmp_path: Path) -> None:
    backend = GatedLog(tmp_path)

    async def main() -> None:
        writer = EventLogWriter(backend, EventLogSettings(events_queue_size=5), lambda: NOW)
        writer.start()
        writer.offer(boxes(3))
        await asyncio.to_thread(backend.entered.wait, 10)  # the writer holds those 3 now
        writer.offer(boxes(23)[3:])  # 20 more: 5 fit the queue, 15 are dropped, no wait
        assert (writer.pending(), writer.dropped, writer.written) == (8, 15, 0)
        backend.gate.set()
        await settled(writer)
        assert (writer.written, writer.dropped, writer.failed) == (8, 15, 0)
        await writer.stop()

    asyncio.run(main())
    assert len(list(backend.read(date(2026, 12, 6), date(2026, 12, 6)))) == 8


def test_a_failed_write_is_retried_until_it_lands(tmp_path: Path) -> None:
    backend = GatedLog(tmp_path, failures=2)
    backend.gate.set()

    async def main() -> None:
        writer = EventLogWriter(backend, EventLogSettings(), lambda: NOW)
        writer.start()
        writer.offer(boxes(4))
        await settled(writer)
        assert (writer.written, writer.dropped, writer.failed) == (4, 0, 2)
        await writer.stop()

    asyncio.run(main())


def test_shutdown_writes_what_is_queued(tmp_path: Path) -> None:
    backend = FileEventLog(tmp_path)

    async def main() -> None:
        writer = EventLogWriter(backend, EventLogSettings(), lambda: NOW)
        writer.start()
        writer.offer(boxes(50))
        await writer.stop()
        assert (writer.written, writer.dropped) == (50, 0)

    asyncio.run(main())
    assert len(list(backend.read(date(2026, 12, 6), date(2026, 12, 6)))) == 50


def test_the_writer_prunes_days_past_retention_when_it_starts(tmp_path: Path) -> None:
    backend = FileEventLog(tmp_path)
    for day in range(1, 7):
        backend.write(impression(f"box-{day:016d}", day=date(2026, 12, day)))

    async def main() -> None:
        writer = EventLogWriter(backend, EventLogSettings(events_retention_days=3), lambda: NOW)
        writer.start()
        writer.offer(boxes(1))
        await settled(writer)
        await writer.stop()

    asyncio.run(main())
    kept = {path.name for path in backend.folder.glob("*.jsonl")}
    assert kept == {"2026-12-04.jsonl", "2026-12-05.jsonl", "2026-12-06.jsonl"}


class CountedLog(FileEventLog):
    """A file log that records the size of each write."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.writes: list[int] = []

    def write(self, events: Sequence[LoggedEvent]) -> int:
        self.writes.append(len(events))
        return super().write(events)


@pytest.mark.timing  # the three later beacons must come within the gathering's 50 ms
def test_beacons_offered_while_a_batch_gathers_are_written_together(tmp_path: Path) -> None:
    """The first beacon after a quiet spell is written at once, the next ones gather."""
    backend = CountedLog(tmp_path)

    async def main() -> None:
        writer = EventLogWriter(backend, EventLogSettings(), lambda: NOW)
        writer.start()
        first, *later = boxes(4)
        writer.offer([first])
        # Written alone, whatever the writer was doing when it came (its start-up pruning, once,
        # took long enough on a loaded machine for the second beacon to join it).
        await settled(writer)
        for box in later:  # three more, 2 ms apart: within the 50 ms since that write
            writer.offer([box])
            await asyncio.sleep(0.002)
        await settled(writer)
        await writer.stop()

    asyncio.run(main())
    assert backend.writes == [1, 3]
