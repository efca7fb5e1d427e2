"""The popular articles that the `popular` fallback fills related lists with.

Each worker keeps a small table: per section, the articles most clicked over the last
`RECOMMENDER_POPULAR_HOURS` according to the impression log, at most `PER_SECTION` each. A
background task recounts it every `RECOMMENDER_POPULAR_REFRESH_SECONDS` (in a thread: the log
is read there); a request only reads the table. A recount that fails keeps the last table.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping

from api.event_log.event_log_factory import settings_event_log
from api.event_log.logged_events import EventLog
from api.serving.background_refresh import refresh_forever
from api.stores.event_schemas import DEFAULT_PLACEMENT
from index.serving.recommender_engine import Recommender
from recommender.errors import ArticleNotFound
from recommender.fallbacks import Fallbacks
from recommender.settings import FallbackSettings, Settings

log = logging.getLogger(__name__)

#: Slugs kept per section: the longest list (limit 50) with as many again for the filters,
#: blocks and the related items that may already hold some of them.
PER_SECTION = 100
SECONDS_PER_HOUR = 3600


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

    def recount(self) -> None:
        """Count the window's clicks again and replace the table (blocking: the log is read)."""
        recommender = self._current()
        if recommender is None:
            return
        since = self._clock() - self._settings.popular_hours * SECONDS_PER_HOUR
        self.by_section = top_by_section(recommender, self._log.clicks_since(since))
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
