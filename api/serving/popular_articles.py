"""The popular articles that the `popular` fallback fills related lists with.

Each worker keeps a small table: per section, the articles most clicked over the last
`RECOMMENDER_POPULAR_HOURS` according to the impression log, at most `PER_SECTION` each. A
background task recounts it every `RECOMMENDER_POPULAR_REFRESH_SECONDS` (in a thread: the log
is read there); a request only reads the table. A recount that fails keeps the last table.
Each recount reads only the clicks logged since the last one (`WindowClicks`), not the window's.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from api.event_log.event_log_factory import settings_event_log
from api.event_log.logged_events import EventLog, LoggedEvent
from api.serving.background_refresh import refresh_forever
from index.serving.recommender_engine import Recommender
from recommender.articles import DEFAULT_PLACEMENT
from recommender.click_statistics import LATE_SECONDS
from recommender.errors import ArticleNotFound
from recommender.fallbacks import Fallbacks
from recommender.remembered_keys import RememberedKeys
from recommender.settings import FallbackSettings, Settings

log = logging.getLogger(__name__)

#: Slugs kept per section: the longest list (limit 50) with as many again for the filters,
#: blocks and the related items that may already hold some of them.
PER_SECTION = 100
SECONDS_PER_HOUR = 3600
#: Clicks leave the window a minute at a time.
BUCKET_SECONDS = 60


class WindowClicks:
    """Clicks per article over the last `window_seconds` (to the minute), added to as the log
    grows: each count reads from a little before the latest click counted (the log's writers
    may add a click a little after its time, and other hosts' clocks may be a little behind;
    one read again counts once; a read that failed midway is taken up where it stopped), and
    the minutes that left the window are taken off. Until a click is counted, each count reads
    the whole window."""

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        self.totals: Counter[str] = Counter()
        self._minutes: dict[int, Counter[str]] = {}
        self._recent: RememberedKeys[tuple[str, str, str, int], None] = RememberedKeys()
        self._latest = -math.inf

    def since(self, now: float) -> float:
        """From when the log should be read for a count at `now`."""
        return max(now - self._window, self._latest - LATE_SECONDS)

    def add(self, clicks: Iterable[LoggedEvent], now: float) -> None:
        """Count `clicks` (read from `since(now)`, in time order) not counted yet, then leave
        out the minutes before the window."""
        start = now - self._window
        for click in clicks:
            key = click.key()
            if key in self._recent or click.at < start:
                continue
            self._recent.put(key, click.at, None)
            self._minutes.setdefault(int(click.at // BUCKET_SECONDS), Counter())[click.target] += 1
            self.totals[click.target] += 1
            self._latest = max(self._latest, click.at)
            if self._recent.due:
                self._recent.forget_before(self._latest - LATE_SECONDS)
        self._recent.forget_before(self._latest - LATE_SECONDS)
        first_kept = int(start // BUCKET_SECONDS)
        for minute in [minute for minute in self._minutes if minute < first_kept]:
            self.totals.subtract(self._minutes.pop(minute))
        self.totals = +self.totals  # only articles with clicks left


class PopularArticles:
    """The most clicked articles by section (`by_section`), recounted by `run`."""

    def __init__(
        self,
        event_log: EventLog,
        current: Callable[[], Recommender | None],
        settings: FallbackSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = event_log
        self._current = current
        self._settings = settings
        self._clock = clock
        self.by_section: Mapping[str | None, tuple[str, ...]] = {}
        """Section (None: articles without one) -> slugs, most clicked first; replaced whole by
        each recount, so a reader sees one table or the next."""
        self.recounts = 0
        self.failures = 0
        self._clicks = WindowClicks(settings.popular_hours * SECONDS_PER_HOUR)

    def recount(self) -> None:
        """Add the clicks logged since the last recount and replace the table (blocking: the
        log is read)."""
        recommender = self._current()
        if recommender is None:
            return
        now = self._clock()
        self._clicks.add(self._log.clicks_read_since(self._clicks.since(now)), now)
        self.by_section = top_by_section(recommender, self._clicks.totals)
        self.recounts += 1

    async def run(self) -> None:
        """Recount now and then every `popular_refresh_seconds`, until cancelled."""
        await refresh_forever(self.recount, self._settings.popular_refresh_seconds, self._failed)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        log.warning("popular articles not recounted (%s); keeping the last count", exc)


def top_by_section(
    recommender: Recommender, clicks: Mapping[str, int], per_section: int = PER_SECTION
) -> dict[str | None, tuple[str, ...]]:
    """The `per_section` most clicked served articles of each section of `recommender`'s
    catalog; ties go to the newer article, then by slug. Slugs it does not serve are left out."""
    facts = recommender.facts
    entries: dict[str | None, list[tuple[int, float, str]]] = {}
    for slug, count in clicks.items():
        try:
            row = recommender.row_of(slug)
        except ArticleNotFound:
            continue
        section = facts.sections.labels[int(facts.sections.codes[row])]
        published = float(facts.published[row])
        entries.setdefault(section, []).append(
            (count, -math.inf if math.isnan(published) else published, slug)
        )
    return {
        section: tuple(
            slug
            for _, _, slug in sorted(found, key=lambda entry: (-entry[0], -entry[1], entry[2]))[
                :per_section
            ]
        )
        for section, found in entries.items()
    }


def fallbacks_now(
    settings: Settings, recommender: Recommender, placement: str = DEFAULT_PLACEMENT
) -> Fallbacks | None:
    """`placement`'s fallback chain as a worker of the service applies it now, its popular
    table counted once from the impression log (for the CLI, which keeps no table running);
    None when fallbacks are off there."""
    steps = settings.fallbacks.steps(placement)
    if steps is None or "popular" not in steps:
        return None if steps is None else Fallbacks(steps, {})
    with settings_event_log(settings) as log:
        table = PopularArticles(log, lambda: recommender, settings.fallbacks)
        table.recount()
        return Fallbacks(steps, table.by_section)
