"""The cost of a refresh's read of the file log (docs/learning.md, "Fallbacks"): one UTC day of
N boxes of three impression items, written to a fresh data directory's files; then three reads
of the last five minutes by one reader (the first reads the whole day and leaves its marks).

Usage: python docs/experiments/file_log_reads.py DIR N
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import LoggedEvent

folder, boxes = Path(sys.argv[1]), int(sys.argv[2])
midnight = datetime(2026, 12, 6, tzinfo=UTC)
spacing = 80_000 / boxes  # seconds between boxes: the day's first 22 hours
log = FileEventLog(folder)


def shown(box: int, position: int) -> LoggedEvent:
    return LoggedEvent(
        type="impression",
        at=midnight.timestamp() + spacing * box + position / 10,
        source=f"story-{box % 5000}",
        impression=f"box-{box:016d}",
        position=position,
        target=f"story-{(box + position) % 5000}",
        placement="default",
        arm="default",
        version="v1",
        propensity=1.0,
    )


for first in range(0, boxes, 500):
    log.write([shown(box, p) for box in range(first, min(first + 500, boxes)) for p in (1, 2, 3)])
size = log.path(midnight.date()).stat().st_size
last_five_minutes = midnight.timestamp() + spacing * boxes - 300
for attempt in ("first", "second", "third"):
    started = time.perf_counter()
    events = sum(1 for _ in log.read_since(last_five_minutes))
    took = time.perf_counter() - started
    print(f"{attempt} read: {events} events of a {size / 1e6:.0f} MB day in {took:.3f} s")
