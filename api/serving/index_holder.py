"""What a worker serves from: the current index version, hot-reloaded, with live changes and
editors' overrides applied.

With the shared database (`RECOMMENDER_DATABASE_URL`) each worker learns the stores' generations
by polling one row per store every `RECOMMENDER_DATABASE_POLL_SECONDS` (a cheap indexed read,
rather than LISTEN/NOTIFY, which needs a connection held per worker and misses changes while it
reconnects) and applies what changed off the request path. When the database cannot be reached,
readers keep the last state this worker knew and the poll retries.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from index.index_errors import NoIndexError, StoreUnavailable
from index.serving.recommender_engine import Recommender
from index.serving.version_loader import as_served, load_current, with_live_changes
from index.state.postgres_database import UNAVAILABLE
from index.state.state_stores import open_stores
from index.versions.replica_sync import ReplicaSync
from index.versions.version_store import VersionStore
from recommender.click_statistics import ClickStatistics
from recommender.errors import RecommenderError
from recommender.settings import IndexSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


class IndexHolder:
    """The recommender over the published version; swapped when `CURRENT` changes.

    A version that fails to load (corrupt, wrong model) is refused and logged; whatever was
    serving keeps serving (at start-up: the newest intact older version). Requests read
    `current` once, so a swap never mixes two versions in one answer. Live changes and overrides
    replace `current` only if it is still the one they were applied to, else they are applied
    again: a write finishing after a swap never puts the older version back.
    """

    def __init__(self, settings: IndexSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._store = VersionStore(settings.data_dir)
        self.stores = open_stores(settings, clock=clock)
        self.live = self.stores.live
        self.curation = self.stores.curation
        self.database_degraded = False
        """Whether the last poll of the shared database failed (readers serve the last state)."""
        self.current: Recommender | None = None
        self.clicks: ClickStatistics | None = None
        """The readers' clicks as last counted (`api.serving.click_counts`): a recount replaces
        it whole, and `require` applies it to the recommender it serves."""
        self._changing = threading.Lock()
        self.problem: str | None = None
        self._attempted: str | None = None
        self._replica = ReplicaSync(settings, settings.store_url) if settings.store_url else None
        self.polls = 0
        """Looks at `CURRENT` the watcher has finished (`recommender_index_polls_total`): proof
        that it is alive, and what a test waits on instead of a guessed sleep."""

    def close(self) -> None:
        self.stores.close()

    def require(self) -> Recommender:
        """The recommender to answer with, live changes and overrides applied (two `stat`s, or
        two remembered generations); the last state known while the database is unreachable."""
        current = self._served()
        try:
            if self.live.generation() != current.overlay.generation:
                current = self.apply_live_changes()
            if self.curation.generation() != current.overrides.generation:
                current = self.apply_overrides()
        except StoreUnavailable:
            self.database_degraded = True
        if current.clicks is not self.clicks:
            current = self.apply_clicks()
        return current

    async def call_store(self, call: Callable[[], T]) -> T:
        """Run `call` (a read or a write of the stores) off the event loop; with the shared
        database, give up after its timeout with StoreUnavailable (a paused server never
        answers, and the driver has no client-side timeout: the thread finishes on its own)."""
        work = asyncio.to_thread(call)
        if not self.stores.shared:
            return await work
        try:
            return await asyncio.wait_for(work, self._settings.database.timeout_seconds * 2)
        except TimeoutError:
            raise StoreUnavailable(UNAVAILABLE) from None

    def sync_database(self) -> None:
        """Learn the shared generations and apply what changed (blocking: run in a thread)."""
        try:
            self.stores.refresh()
        except StoreUnavailable:
            self.database_degraded = True
            return
        self.database_degraded = False
        if self.current is not None:
            self.require()

    def apply_live_changes(self) -> Recommender:
        """Bring the served version's overlay up to the live store and serve it."""
        while True:
            current = self._served()
            overlaid = with_live_changes(
                current.version, self.live, self._settings, current.overlay
            )
            updated = overlaid.with_overrides(current.overrides)
            if self._replace(current, updated):
                return updated

    def apply_overrides(self) -> Recommender:
        """Serve the editors' overrides as they are now."""
        overrides = self.curation.snapshot()
        while True:
            current = self._served()
            updated = current.with_overrides(overrides)
            if self._replace(current, updated):
                return updated

    def serve_clicks(self, clicks: ClickStatistics) -> None:
        """Serve these click statistics from the next request on (a reference swap: a request
        reads the old ones or these)."""
        self.clicks = clicks

    def apply_clicks(self) -> Recommender:
        """Serve the click statistics last counted (`clicks`, replaced whole by a recount)."""
        while True:
            current = self._served()
            if self.clicks is None or current.clicks is self.clicks:
                return current
            updated = current.with_clicks(self.clicks)
            if self._replace(current, updated):
                return updated

    def _replace(self, based_on: Recommender, updated: Recommender) -> bool:
        """Serve `updated` if `current` is still the `based_on` it was made from (no store is
        read under the lock, so a paused database never holds up readers)."""
        with self._changing:
            if self.current is not based_on:
                return False
            self.current = updated
            return True

    def _served(self) -> Recommender:
        if self.current is None:
            raise NoIndexError(self.problem or "no index version is loaded yet")
        return self.current

    def _published_id(self) -> str | None:
        try:
            return self._store.current_id()
        except RecommenderError as exc:
            if self.current is None:
                self.problem = str(exc)
            return None

    async def refresh(self) -> bool:
        """Load the published version if it was not tried yet; True if the served one changed."""
        if self._replica is not None:  # first follow the shared store's CURRENT, if any
            await asyncio.to_thread(self._replica.pull)
        published = self._published_id()
        if published is None or published == self._attempted:
            return False
        self._attempted = published
        try:
            version, warning = await asyncio.to_thread(load_current, self._settings)
            recommender = await asyncio.to_thread(as_served, version, self.stores, self._settings)
        except StoreUnavailable:
            # Not the version's fault: try it again once the database answers.
            self._attempted = None
            self.database_degraded = True
            log.warning("index version %s waits for the database", published)
            return False
        except RecommenderError as exc:
            self.problem = str(exc)
            log.error("cannot load index version %s: %s", published, exc)
            return False
        self.problem = warning
        if warning:
            log.error("%s", warning)
        with self._changing:
            if self.current is not None and self.current.version.id == version.id:
                return False
            self.current = recommender
        log.info("serving index version %s (%d articles)", version.id, version.size)
        return True

    async def watch(self, interval: float) -> None:
        """Poll `CURRENT` forever (cancel the task to stop)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # a watcher that dies would freeze the service on one version
                log.exception("index reload failed; will retry")
            self.polls += 1

    async def watch_database(self) -> None:
        """Poll the shared database's generations forever (cancel the task to stop).

        One poll at a time: a poll stuck on a paused database is waited out past the timeout
        (readers meanwhile serve the last state) rather than piling up threads.
        """
        settings = self._settings.database
        poll: asyncio.Future[None] | None = None
        while True:
            await asyncio.sleep(settings.poll_seconds)
            if poll is None or poll.done():
                poll = asyncio.ensure_future(asyncio.to_thread(self.sync_database))
            try:
                await asyncio.wait_for(asyncio.shield(poll), settings.timeout_seconds)
            except TimeoutError:
                self.database_degraded = True
            except Exception:  # a watcher that dies would freeze the service on one state
                log.exception("database poll failed; will retry")
