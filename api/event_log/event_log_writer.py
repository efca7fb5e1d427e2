"""Feeds the impression log off the request path (`EventLogWriter`).

`POST /v1/events` hands accepted events to `offer`, which never waits: they go into a bounded
in-process queue (`RECOMMENDER_EVENTS_QUEUE_SIZE`), and when it is full they are dropped and
counted. A background task takes them out in batches (at most one write starts per
`GATHER_SECONDS` unless a batch is full) and writes each batch from a thread; a
failed write is retried with a growing pause while the queue keeps taking events (and drops
them once full). The writer also prunes days past retention, at start and once a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from api.event_log.logged_events import EventLog, LoggedEvent, first_kept_day
from recommender.errors import RecommenderError
from recommender.settings import EventLogSettings

log = logging.getLogger(__name__)

#: Events written per call of the backend.
BATCH = 5000
#: Least time between the starts of two writes, while batches are not full: at 5,000 events/s,
#: writing whatever had arrived (a few beacons' worth) cost the worker a third more CPU per
#: beacon than statements of ~250 events, and PostgreSQL a statement and a commit each time.
#: The first event after a quiet spell is written at once, and so is the next batch after a
#: write slower than this (a saturated writer never waits).
GATHER_SECONDS = 0.05
#: Pauses between retries of a failed write: from the first to the last, doubling.
FIRST_RETRY_SECONDS = 0.1
LAST_RETRY_SECONDS = 5.0
#: How long shutdown waits for the queue to be written before dropping the rest.
STOP_SECONDS = 5.0
#: An idle writer still wakes this often to prune a new day.
IDLE_SECONDS = 600.0


class EventLogWriter:
    """The bounded queue and background writer of one process's impression log."""

    def __init__(
        self,
        log_backend: EventLog,
        settings: EventLogSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = log_backend
        self._settings = settings
        self._clock = clock
        self._queue: asyncio.Queue[LoggedEvent] = asyncio.Queue(settings.queue_size)
        self._task: asyncio.Task[None] | None = None
        self._pruned: date | None = None
        self._in_flight = 0
        self._last_write = -GATHER_SECONDS
        self.written = 0
        """Events the log stored (a repeat of one logged before is not counted)."""
        self.dropped = 0
        """Events lost: the queue was full, or shutdown could not write them."""
        self.failed = 0
        """Writes of a batch that failed (each then retried)."""

    def offer(self, events: Sequence[LoggedEvent]) -> None:
        """Queue `events` for the log; never waits (a full queue drops and counts them)."""
        for event in events:
            try:
                self._queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1

    def pending(self) -> int:
        """Events queued or being written."""
        return self._queue.qsize() + self._in_flight

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Write what is queued (for at most `STOP_SECONDS`), then stop; the rest is dropped."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), STOP_SECONDS)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.dropped += self._queue.qsize() + self._in_flight
        self.backend.close()

    async def _run(self) -> None:
        while True:
            await self._prune_if_new_day()
            try:
                first = await asyncio.wait_for(self._queue.get(), IDLE_SECONDS)
            except TimeoutError:
                continue
            gather = self._last_write + GATHER_SECONDS - time.monotonic()
            if gather > 0 and self._queue.qsize() < BATCH:
                await asyncio.sleep(gather)
            self._last_write = time.monotonic()
            batch = [first]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_flight = len(batch)
            try:
                await self._write(batch)
            finally:
                self._in_flight = 0
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[LoggedEvent]) -> None:
        """Write `batch`, retrying until it succeeds (or the task is cancelled)."""
        pause = FIRST_RETRY_SECONDS
        while True:
            try:
                self.written += await asyncio.to_thread(self.backend.write, batch)
                return
            except RecommenderError as exc:
                self.failed += 1
                log.warning("impression log write failed (%s); retrying in %.1f s", exc, pause)
            except Exception:  # a batch the backend can never take: retrying cannot help
                self.failed += 1
                self.dropped += len(batch)
                log.exception("impression log refused a batch of %d events", len(batch))
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, LAST_RETRY_SECONDS)

    async def _prune_if_new_day(self) -> None:
        today = datetime.fromtimestamp(self._clock(), UTC).date()
        if self._pruned == today:
            return
        first_kept = first_kept_day(today, self._settings.retention_days)
        try:
            gone = await asyncio.to_thread(self.backend.prune, first_kept)
        except Exception as exc:  # pruning must never stop the writing
            log.warning("impression log not pruned (%s); trying again tomorrow", exc)
        else:
            if gone:
                log.info("impression log: %d pruned before %s", gone, first_kept)
        self._pruned = today
