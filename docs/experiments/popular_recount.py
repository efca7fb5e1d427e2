"""The cost of one recount of the popular articles (docs/learning.md, "Fallbacks"): a log of
N impression items and N/50 clicks spread over 47 hours, written to a fresh data directory's
files, or to an empty PostgreSQL database when a URL is given; then three recounts of 48 hours.

Usage: python docs/experiments/popular_recount.py DIR N [DATABASE_URL]
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from api.event_log.event_log_factory import open_event_log
from api.event_log.logged_events import LoggedEvent
from index.state.postgres_database import PostgresState
from recommender.settings import DatabaseSettings

folder, count = Path(sys.argv[1]), int(sys.argv[2])
postgres = PostgresState(DatabaseSettings(database_url=sys.argv[3])) if sys.argv[3:] else None
log = open_event_log(folder, postgres)
now = time.time()
batch: list[LoggedEvent] = []
for i in range(count):
    at = now - (i / count) * 47 * 3600
    box = f"box-{i // 5:016d}"
    target = f"article-{(i * 7) % 20_000}"
    shown = LoggedEvent(
        "impression", at, f"source-{i % 5000}", box, i % 5 + 1, target, "article-end",
        "default", "v1", 1.0,
    )  # fmt: skip
    batch.append(shown)
    if i % 50 == 0:
        batch.append(LoggedEvent(**{**shown.record(), "type": "click", "propensity": None}))
    if len(batch) >= 50_000:
        log.write(batch)
        batch = []
log.write(batch)
where = (
    "PostgreSQL"
    if postgres
    else f"{sum(p.stat().st_size for p in folder.rglob('*.jsonl')) / 1e6:.0f} MB of files"
)
for _ in range(3):
    wall, cpu = time.perf_counter(), time.process_time()
    clicks = Counter(click.target for click in log.clicks_read_since(now - 48 * 3600))
    print(
        f"{count:,} impression items and {sum(clicks.values()):,} clicks ({where}): recount "
        f"{time.perf_counter() - wall:.3f} s, {time.process_time() - cpu:.3f} s CPU in this process"
    )
if postgres is not None:
    postgres.close()
