"""The readers' clicks that the click signal scores (`recommender.click_statistics`), counted
from the impression log.

The nightly `recommender reindex` recounts the whole log (`recount`) into `FILE` in the data
directory. Each worker starts from that file (or, on a host without it, from a recount of its
own), then every `RECOMMENDER_CLICK_REFRESH_SECONDS` adds the events logged since
(`ClickCounts.refresh`, in a thread) and hands the index holder a new immutable snapshot; a
request reads one snapshot or the next, never a half-counted one. A newer file (the next night's
recount) replaces the worker's counts. A refresh that fails keeps the last snapshot. Only
accepted events are in the log: a forged or refused beacon never counts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from api.event_log.event_log_factory import settings_event_log
from api.event_log.logged_events import EventLog, first_kept_day
from api.serving.background_refresh import refresh_forever
from index.index_errors import StorageError
from recommender.click_statistics import ClickStatistics, ClickTally
from recommender.settings import ClickSettings, Settings

log = logging.getLogger(__name__)

#: How long a starting worker waits for its first count before it serves without clicks.
FIRST_COUNT_SECONDS = 10.0
#: The nightly recount, in the data directory.
FILE = "click-counts.json"


def recount(
    event_log: EventLog, settings: ClickSettings, retention_days: int, now: float
) -> ClickTally:
    """Every event the log keeps, counted afresh (decayed as of `now`)."""
    tally = ClickTally(settings.half_life_days, now)
    today = datetime.fromtimestamp(now, UTC).date()
    tally.add(event_log.read(first_kept_day(today, retention_days), today))
    return tally


def recount_to_file(settings: Settings, now: float) -> tuple[Path, ClickTally]:
    """The nightly recount: the whole log (the shared database's, or the data directory's
    files) counted into `FILE`; the file and the counts."""
    with settings_event_log(settings) as event_log:
        tally = recount(event_log, settings.clicks, settings.event_log.retention_days, now)
    return save_counts(tally, settings.data_dir), tally


def save_counts(tally: ClickTally, data_dir: Path) -> Path:
    """Write `tally` to `FILE` atomically (a worker reads the old file or the new one)."""
    path = data_dir / FILE
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_bytes(orjson.dumps(tally.to_json()))
        os.replace(temporary, path)
    except OSError as exc:
        raise StorageError(f"cannot write the click counts to {path}: {exc}") from exc
    return path


def load_counts(data_dir: Path, settings: ClickSettings) -> tuple[ClickTally, float] | None:
    """The nightly counts and when they were written; None without a usable file (none, unreadable,
    or counted with another half-life)."""
    path = data_dir / FILE
    try:
        written = path.stat().st_mtime
        tally = ClickTally.from_json(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring the click counts in %s (%s); counting the log instead", path, exc)
        return None
    if tally.half_life_days != settings.half_life_days:
        return None
    return tally, written


class ClickCounts:
    """One worker's click counts, refreshed from the log; each new snapshot goes to `serve`
    (the index holder's `serve_clicks`)."""

    def __init__(
        self,
        event_log: EventLog,
        serve: Callable[[ClickStatistics], None],
        settings: ClickSettings,
        data_dir: Path,
        retention_days: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = event_log
        self._serve = serve
        self._counting = threading.Lock()
        self._settings = settings
        self._data_dir = data_dir
        self._retention_days = retention_days
        self._clock = clock
        self._tally: ClickTally | None = None
        self._file_written: float | None = None
        self.refreshes = 0
        self.failures = 0
        self.events = 0
        """Events in the counts last served."""

    def refresh(self) -> ClickStatistics:
        """Add the log's new events (after a newer nightly file, or a first recount) and serve
        the result (blocking: the log is read)."""
        with self._counting:  # one refresh at a time adds to the tally
            now = self._clock()
            saved = load_counts(self._data_dir, self._settings)
            if saved is not None and saved[1] != self._file_written:
                self._tally, self._file_written = saved
            if self._tally is None:
                self._tally = recount(self._log, self._settings, self._retention_days, now)
            else:
                self._tally.add(self._log.read_since(self._tally.since))
            statistics = self._tally.statistics(now, self._settings.prior_clicks)
        self._serve(statistics)
        self.events = statistics.events
        self.refreshes += 1
        return statistics

    async def first_count(self, timeout: float = FIRST_COUNT_SECONDS) -> None:
        """Count before the worker takes requests, for at most `timeout` seconds: lists
        served before the first count would rank without clicks and stay cached so. A count
        that fails or takes longer is left to `run` (the worker starts regardless)."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self.refresh), timeout)
        except TimeoutError:
            log.warning(
                "click counts not ready after %.0f s; serving without them meanwhile", timeout
            )
        except Exception as exc:  # the worker serves without clicks until `run` counts them
            self._failed(exc)

    async def run(self) -> None:
        """Refresh now and then every `refresh_seconds`, until cancelled."""
        await refresh_forever(self.refresh, self._settings.refresh_seconds, self._failed)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        log.warning("click counts not refreshed (%s); keeping the last ones", exc)
