"""Keeping a replica's data directory in step with the shared version store.

Each serving process calls `ReplicaSync.pull` before it looks at its local `CURRENT`: when
the store's `CURRENT` names another version, that version is downloaded into the local store
(verified in a staging directory, so a partial download never becomes a version), committed
and published locally, and the usual hot swap takes it from there. Processes on one host
take turns through the data directory's reindex lock.
"""

from __future__ import annotations

import logging

from index.index_errors import IndexStoreError, ReindexLocked
from index.versions.reindex_lock import reindex_lock
from index.versions.remote_store import RemoteStore
from index.versions.version_store import VersionStore
from recommender.settings import IndexSettings

__all__ = ["ReplicaSync", "pull_current"]

log = logging.getLogger(__name__)


def _local_current(store: VersionStore) -> str | None:
    try:
        return store.current_id()
    except IndexStoreError:
        return None


def pull_current(settings: IndexSettings, remote: RemoteStore) -> str | None:
    """Publish the store's CURRENT in `settings.data_dir`, downloading it if needed.

    Returns the version newly published here, or None when nothing changed. Raises
    ReindexLocked while another process writes to the data directory (try again later),
    RemoteStoreError when the store fails, CorruptVersionError for a damaged version.
    """
    wanted = remote.current_id()
    local = VersionStore(settings.data_dir)
    if wanted is None or wanted == _local_current(local):
        return None
    with reindex_lock(settings.data_dir):
        if wanted == _local_current(local):  # another process of this host was first
            return None
        if wanted not in local.version_ids():
            with local.staging() as staging:
                remote.download(wanted, staging)
                local.commit(staging, wanted)
        local.publish(wanted)
        local.prune(settings.keep_versions)
    return wanted


class ReplicaSync:
    """`pull_current` for a serving process: never raises, and logs only changes of state."""

    def __init__(self, settings: IndexSettings, store_url: str) -> None:
        self._settings = settings
        self._remote = RemoteStore(store_url)
        self._problem: str | None = None

    def pull(self) -> None:
        try:
            version = pull_current(self._settings, self._remote)
        except ReindexLocked:
            return  # another process is writing this data directory; next round
        # Whatever the store does wrong (network, credentials, a bad version), the version
        # being served stays; the next round tries again.
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if problem != self._problem:
                log.warning("cannot fetch the published version: %s", problem)
            self._problem = problem
            return
        if self._problem is not None:
            self._problem = None
            log.info("the version store %s answers again", self._remote.url)
        if version is not None:
            log.info("fetched version %s from %s", version, self._remote.url)
