"""Domain errors. Each is translated at exactly one edge: HTTP (`api.error_handlers`) or the CLI.

RecommenderError
├── InvalidRecord        one feed record is unusable (reported as file:line: reason)
├── FeedError            a feed source cannot be read at all (missing, unknown format)
│   ├── FetchError           a URL cannot be fetched: HTTP status, network error, refused body
│   └── ListingTooLong       a paged listing goes on past RECOMMENDER_FETCH_MAX_PAGES
├── StrictModeError      --strict and the feeds held bad records: nothing is published
├── ModelError           the embedding model cannot be loaded or does not fit the index
├── ArticleNotFound      no article with that slug in the served catalog
├── InvalidQuery         a query that is well-formed but cannot be answered
├── OverrideNotFound     no such pin, block or audit record
├── UndoConflict         an audit record that was already undone
├── StorageError         the data directory cannot be written (a full disk): nothing published
├── RemoteStoreError     the shared version store (RECOMMENDER_STORE_URL) cannot be used
├── StoreUnavailable     the shared database (RECOMMENDER_DATABASE_URL) cannot be reached now
├── CatalogShrinkRefused a reindex would lose too much of the served catalog: nothing published
├── LogLacksSupport      the impression log cannot support an off-policy estimate of a ranking
└── IndexStoreError      the on-disk version store
    ├── NoIndexError         nothing published yet
    ├── VersionNotFound      a named version does not exist
    ├── CorruptVersionError  files missing, truncated or failing their checksums
    └── ReindexLocked        another reindex holds the lock
"""

from __future__ import annotations


class RecommenderError(Exception):
    """Base of every error this project raises on purpose."""


class InvalidRecord(RecommenderError):
    """A single feed record cannot become an Article."""


class FeedError(RecommenderError):
    """A whole feed source is unreadable."""


class FetchError(FeedError):
    """A URL that could not be fetched whole (after retries), or whose answer was refused."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ListingTooLong(FeedError):
    """A WordPress listing, paged feed or sitemap index with more pages than the page limit,
    while partial listings are not allowed."""


class StrictModeError(RecommenderError):
    """Bad records were found while strict mode was on."""


class ModelError(RecommenderError):
    """The embedding model is missing, unloadable, or incompatible with an index."""


class ArticleNotFound(RecommenderError):
    """No article with the requested slug."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"no article with slug {slug!r}")
        self.slug = slug


class InvalidQuery(RecommenderError):
    """A request that passes schema validation but makes no sense."""


class OverrideNotFound(RecommenderError):
    """No pin, block or audit record matches the request."""


class UndoConflict(RecommenderError):
    """The change was already undone."""


class LogLacksSupport(RecommenderError):
    """The impression log shows too few of a ranking's choices (or no impressions at all) for an
    off-policy estimate of it."""


class InvalidExperiment(RecommenderError):
    """An A/B experiment whose arms cannot run (shares, names, settings): the message names the
    problem."""


class ExperimentChanged(RecommenderError):
    """The experiment changed since the version a change was based on (`If-Match`)."""
