"""The impression log as JSON Lines files in the data directory, one per UTC day
(`event-log/2026-12-06.jsonl`): the backend of a host without `RECOMMENDER_DATABASE_URL`.

Every worker of the data directory appends under one file lock (`event-log/.lock`). A record is
kept once: under the lock, each writer first reads what the others appended since it last
looked (the files only grow), so it knows every key of the days an event may repeat in (its
own and the day before: a beacon is replayed within its token's hours, and the events store
refuses replays before they reach the log while Redis works).

Reads of what came since a moment (each worker's click and popularity refreshes) start where
the file holds only earlier events: a read leaves marks, every `MARK_BYTES`, of the latest
moment of every line before them (the files only grow, so a mark stays true), and the next read
starts at the last mark before its moment instead of at the start of the day.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import orjson
from filelock import FileLock

from api.event_log.logged_events import LoggedEvent, utc_day
from index.index_errors import StorageError

log = logging.getLogger(__name__)

FOLDER = "event-log"
SUFFIX = ".jsonl"
LOCK_NAME = ".lock"
#: Longest wait for another worker's append.
LOCK_SECONDS = 10.0

Key = tuple[str, str, str, int]
#: How a click's line starts (`LoggedEvent.record` puts the type first).
_CLICK = b'{"type":"click"'
#: What comes before a record's moment (`LoggedEvent.record` puts it second).
_AT = b'"at":'
#: A read marks where a later one may start about every this many bytes of a day's file.
MARK_BYTES = 1 << 20


@dataclass
class _SeenDay:
    """The keys of one day's file up to `offset` (bytes read so far)."""

    offset: int = 0
    keys: set[Key] = field(default_factory=set)


@dataclass
class _Marks:
    """Offsets of one day's file, each with the latest moment of every line before it; both
    only grow."""

    offsets: list[int] = field(default_factory=lambda: [0])
    latest: list[float] = field(default_factory=lambda: [-math.inf])

    def start(self, since: float) -> tuple[int, float]:
        """The last mark before which every line is earlier than `since`."""
        last = bisect_left(self.latest, since) - 1
        return self.offsets[last], self.latest[last]

    def add(self, offset: int, latest: float) -> None:
        if offset > self.offsets[-1]:
            self.offsets.append(offset)
            self.latest.append(latest)


class FileEventLog:
    """`EventLog` over one file per UTC day in `data_dir / FOLDER`."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / FOLDER
        self._lock = FileLock(str(self.folder / LOCK_NAME), timeout=LOCK_SECONDS)
        self._seen: dict[date, _SeenDay] = {}
        self._marks: dict[Path, _Marks] = {}
        self._marking = threading.Lock()
        """Refreshes of several kinds may read at once."""

    def path(self, day: date) -> Path:
        return self.folder / f"{day.isoformat()}{SUFFIX}"

    def write(self, events: Sequence[LoggedEvent]) -> int:
        by_day: dict[date, list[LoggedEvent]] = {}
        for event in events:
            by_day.setdefault(event.day, []).append(event)
        written = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self._lock:
                for day in sorted(by_day):
                    written += self._append(day, by_day[day])
        except (OSError, TimeoutError) as exc:
            raise StorageError(
                f"cannot append to the impression log in {self.folder}: {exc}"
            ) from exc
        return written

    def _append(self, day: date, events: list[LoggedEvent]) -> int:
        """Append the events of `day` not logged on `day` or the day before (lock held)."""
        earlier = day - timedelta(days=1)
        for stale in [d for d in self._seen if d < earlier]:
            del self._seen[stale]
        known = self._catch_up(earlier).keys
        today = self._catch_up(day)
        lines = []
        for event in events:
            key = event.key()
            if key in known or key in today.keys:
                continue
            today.keys.add(key)
            lines.append(orjson.dumps(event.record()) + b"\n")
        if not lines:
            return 0
        with self.path(day).open("ab") as file:
            if file.tell() > today.offset:  # a writer died mid-line: end that line first
                file.write(b"\n")
            file.write(b"".join(lines))
            file.flush()
            os.fsync(file.fileno())
            today.offset = file.tell()
        return len(lines)

    def _catch_up(self, day: date) -> _SeenDay:
        """The keys of `day`'s file, reading only what was appended since the last look."""
        seen = self._seen.setdefault(day, _SeenDay())
        path = self.path(day)
        try:
            with path.open("rb") as file:
                file.seek(seen.offset)
                for line in file:
                    if not line.endswith(b"\n"):
                        break  # being written, or left unfinished by a crash
                    seen.offset += len(line)
                    seen.keys.update(event.key() for event in _parse(line, path))
        except FileNotFoundError:
            pass
        return seen

    def read(self, since: date, until: date) -> Iterator[LoggedEvent]:
        for path in self._day_files():
            day = date.fromisoformat(path.name.removesuffix(SUFFIX))
            if since <= day <= until:
                with path.open("rb") as file:
                    for line in file:
                        yield from _parse(line, path)

    def read_since(self, since: float) -> Iterator[LoggedEvent]:
        return self._events_since(since, b"")

    def clicks_read_since(self, since: float) -> Iterator[LoggedEvent]:
        # Only click lines are parsed (a record's first field is its type), so impressions
        # cost a byte comparison each.
        return self._events_since(since, _CLICK)

    def _events_since(self, since: float, starting: bytes) -> Iterator[LoggedEvent]:
        for line, path in self._lines_since(since):
            if line.startswith(starting):
                for event in _parse(line, path):
                    if event.at >= since:
                        yield event

    def _lines_since(self, since: float) -> Iterator[tuple[bytes, Path]]:
        """The whole lines of the files of `since`'s UTC day and later that may be at `since`
        or later (from the last mark before it), each with its file. Read without the writers'
        lock: a line still being appended (no newline yet) waits for the next read."""
        first = utc_day(since)
        files = self._day_files()
        paths = [
            path for path in files if date.fromisoformat(path.name.removesuffix(SUFFIX)) >= first
        ]
        with self._marking:
            # Every day still on disk keeps its marks (another refresh may read further back
            # than this one); a pruned day's go.
            self._marks = {path: self._marks.get(path, _Marks()) for path in files}
        for path in paths:
            yield from self._marked_lines(path, self._marks[path], since)

    def _marked_lines(
        self, path: Path, marks: _Marks, since: float
    ) -> Iterator[tuple[bytes, Path]]:
        with self._marking:
            offset, latest = marks.start(since)
        unmarked = 0
        with path.open("rb") as file:
            file.seek(offset)
            for line in file:
                if not line.endswith(b"\n"):
                    break
                offset += len(line)
                unmarked += len(line)
                latest = max(latest, _moment(line))
                yield line, path
                if unmarked >= MARK_BYTES:
                    with self._marking:
                        marks.add(offset, latest)
                    unmarked = 0

    def prune(self, first_kept: date) -> int:
        gone = 0
        try:
            for path in self._day_files():
                if date.fromisoformat(path.name.removesuffix(SUFFIX)) < first_kept:
                    path.unlink(missing_ok=True)
                    gone += 1
        except OSError as exc:
            raise StorageError(f"cannot prune the impression log in {self.folder}: {exc}") from exc
        return gone

    def _day_files(self) -> list[Path]:
        """The day files, oldest first (names that are not a day are left alone)."""
        found = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            try:
                date.fromisoformat(path.name.removesuffix(SUFFIX))
            except ValueError:
                continue
            found.append(path)
        return sorted(found)

    def close(self) -> None:
        """Nothing stays open between writes."""


def _moment(line: bytes) -> float:
    """A record's `at`, read without parsing the rest (-inf for a line a crash cut short)."""
    start = line.find(_AT) + len(_AT)
    try:
        return float(line[start : line.index(b",", start)])
    except ValueError:
        return -math.inf


def _parse(lines: bytes, path: Path) -> Iterator[LoggedEvent]:
    """The records of `lines`; a line a crashed writer left unfinished is skipped."""
    for line in lines.splitlines():
        if not line.strip():
            continue
        try:
            yield LoggedEvent.from_record(orjson.loads(line))
        except (orjson.JSONDecodeError, TypeError):
            log.warning("skipping an unreadable line of %s", path)
