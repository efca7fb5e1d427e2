"""Errors of the index layer: the version store, the data directory and the shared store.
All are `RecommenderError`s, translated at the same edges as the domain's.

RecommenderError (recommender.errors)
├── StorageError         the data directory cannot be written (a full disk): nothing published
├── RemoteStoreError     the shared version store (RECOMMENDER_STORE_URL) cannot be used
├── StoreUnavailable     the shared database (RECOMMENDER_DATABASE_URL) cannot be reached now
├── CatalogShrinkRefused a reindex would lose too much of the served catalog: nothing published
├── InsufficientSpace    the data directory's disk lacks room for a build: refused before it began
├── ClusterError         a reindex stage on Ray lost a worker (retries ran out): nothing published
└── IndexStoreError      the on-disk version store
    ├── NoIndexError         nothing published yet
    ├── VersionNotFound      a named version does not exist
    ├── CorruptVersionError  files missing, truncated or failing their checksums
    └── ReindexLocked        another reindex holds the lock
"""

from __future__ import annotations

from recommender.errors import RecommenderError


class StorageError(RecommenderError):
    """A write to the data directory failed (disk full, file-size limit, permissions)."""


class RemoteStoreError(RecommenderError):
    """The shared version store cannot be read or written (network, credentials, a bad URL)."""


class StoreUnavailable(RecommenderError):
    """The shared database cannot be reached or answer in time; nothing was changed.

    Its message never carries the database URL or credentials.
    """


class CatalogShrinkRefused(RecommenderError):
    """A reindex would publish a catalog that lost more of the served one than
    `RECOMMENDER_MAX_SHRINK` allows (a broken export, a wrong URL); nothing was published."""


class InsufficientSpace(RecommenderError):
    """The data directory's disk has less room than a build needs (`index.versions.build_space`);
    refused before anything was embedded, nothing changed."""


class ClusterError(RecommenderError):
    """A block of a reindex stage run on Ray (`index.versions.ray_blocks`) could not be computed:
    its worker died on every retry, or the cluster lost it; the run stopped before writing."""


class IndexStoreError(RecommenderError):
    """Problems with the versioned index store."""


class NoIndexError(IndexStoreError):
    """No version has been published yet."""


class VersionNotFound(IndexStoreError):
    """A version id that the store does not hold."""


class CorruptVersionError(IndexStoreError):
    """A version whose files are missing, damaged or built for another model."""


class ReindexLocked(IndexStoreError):
    """Another reindex is running against the same data directory."""
