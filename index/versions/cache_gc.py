"""Garbage collection of the data directory: versions beyond `RECOMMENDER_KEEP_VERSIONS`, and
the embedding, term-count and fetch caches pruned to what can still be used.

What stays: the embedding and term-count entries of the texts some kept version was built from
(each version's `text_hashes.npy`) and of the live upserts in force; the fetch-cache entries of
the URLs the last completed reindex read. Everything else goes: edited texts' old entries,
other models' vectors, a removed article's page. Versions written before their text hashes were
recorded say nothing: when the current one is among them, the two caches are kept whole; older
ones lose what only they used (a rollback to one re-embeds it).

Run under the reindex lock (the nightly run, after publishing; `recommender gc`), so a build
never loses an entry it has just committed and not yet published.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from index.index_errors import CorruptVersionError, NoIndexError
from index.state.embedding_cache import EmbeddingCache
from index.state.hashed_blobs import PruneResult
from index.state.live_store import LiveStore
from index.state.term_count_cache import TermCountCache
from index.versions.manifest import read_manifest
from index.versions.text_hashes import read_text_hashes
from index.versions.version_store import VersionStore
from recommender.articles import embedding_text, lexical_text, text_hash, validate_record
from recommender.errors import InvalidRecord, RecommenderError
from recommender.ingest.options import fetch_cache_dir
from recommender.ingest.web.fetch_cache import FetchCache
from recommender.settings import IndexSettings
from recommender.signals.registry import fusion_weights

log = logging.getLogger(__name__)

_NOTHING = PruneResult(0, 0, 0)


@dataclass(frozen=True, slots=True)
class GcReport:
    """What one collection removed, per kind (or would remove, in a dry run)."""

    dry_run: bool
    versions: list[str]
    """Version ids removed beyond the kept ones."""
    embeddings: PruneResult
    term_counts: PruneResult
    fetch_cache: PruneResult
    notes: list[str] = field(default_factory=list)
    """Why something was kept that might have gone."""

    def to_dict(self) -> dict[str, Any]:
        """The one-line JSON of `recommender gc`."""
        caches = {
            "embeddings": self.embeddings,
            "term_counts": self.term_counts,
            "fetch_cache": self.fetch_cache,
        }
        return {
            "dry_run": self.dry_run,
            "versions_removed": self.versions,
            **{name: asdict(result) for name, result in caches.items()},
            "bytes_freed": sum(result.bytes_freed for result in caches.values()),
            "notes": self.notes,
        }


@dataclass
class _Used:
    """The cache keys still of use: model id -> embedding-text hashes, and names-or-not ->
    lexical-text hashes."""

    embedding: dict[str, set[str]] = field(default_factory=dict)
    lexical: dict[bool, set[str]] = field(default_factory=dict)


def collect_garbage(
    settings: IndexSettings,
    store: VersionStore,
    live: LiveStore,
    *,
    unused_since: float | None = None,
    dry_run: bool = False,
) -> GcReport:
    """Remove the versions beyond `settings.keep_versions`, then prune the caches (see the
    module). Fetch-cache entries not used since `unused_since` (epoch seconds; default: the
    start of the last completed reindex) go. Call under the reindex lock."""
    notes: list[str] = []
    removed = (
        store.prunable(settings.keep_versions) if dry_run else store.prune(settings.keep_versions)
    )
    fetch = _prune_fetch_cache(settings, unused_since, dry_run, notes)
    used = _used_texts(store, [v for v in store.version_ids() if v not in removed], notes)
    if used is None:
        return GcReport(dry_run, removed, _NOTHING, _NOTHING, fetch, notes)
    _add_live_upserts(live, used)
    embeddings = EmbeddingCache(settings.embedding_cache_path)
    try:
        embedded = embeddings.prune(used.embedding, dry_run=dry_run)
    finally:
        embeddings.close()
    term_counts = TermCountCache(settings.term_count_cache_path)
    try:
        analysed = term_counts.prune(used.lexical, dry_run=dry_run)
    finally:
        term_counts.close()
    notes += [result.note for result in (embedded, analysed) if result.note]
    return GcReport(dry_run, removed, embedded, analysed, fetch, notes)


def collect_after_publishing(
    settings: IndexSettings, store: VersionStore, live: LiveStore, started: float
) -> None:
    """The nightly run's collection, once its version is published (`started`: when the run
    began, monotonic). Logged; a failure is logged too, never the run's: it has published."""
    began = time.time() - (time.monotonic() - started)
    try:
        FetchCache(fetch_cache_dir(settings.data_dir)).record_run(began)
        report = collect_garbage(settings, store, live, unused_since=began)
    except (RecommenderError, OSError) as exc:
        log.warning("the caches were not pruned after publishing: %s", exc)
        return
    log.info("gc: %s", report.to_dict())


def _prune_fetch_cache(
    settings: IndexSettings, unused_since: float | None, dry_run: bool, notes: list[str]
) -> PruneResult:
    cache = FetchCache(fetch_cache_dir(settings.data_dir))
    since = unused_since if unused_since is not None else cache.last_run()
    if since is None:
        notes.append("no completed reindex is recorded: the fetch cache was kept")
        return _NOTHING
    removed, kept, freed = cache.prune(since, dry_run=dry_run)
    return PruneResult(removed, kept, freed)


def _used_texts(store: VersionStore, kept: list[str], notes: list[str]) -> _Used | None:
    """The texts the `kept` versions were built from; None (the caches are then kept whole)
    when the current version does not say."""
    try:
        current = store.current_id()
    except (NoIndexError, CorruptVersionError):
        notes.append("no version is published: the embedding and term-count caches were kept")
        return None
    used = _Used()
    silent = []
    for version in kept:
        path = store.versions_dir / version
        try:
            manifest = read_manifest(path)
        except CorruptVersionError:
            silent.append(version)
            continue
        texts = read_text_hashes(path, manifest)
        if texts is None:
            silent.append(version)
            continue
        used.embedding.setdefault(manifest.model_id, set()).update(texts.embedding)
        names = bool(fusion_weights(manifest.ranking)["name_boost"])
        used.lexical.setdefault(names, set()).update(texts.lexical)
    if current in silent:
        notes.append(
            f"the current version {current} records no text hashes (built before they were "
            "recorded): the embedding and term-count caches were kept; the next reindex "
            "records them"
        )
        return None
    if silent:
        notes.append(
            f"{len(silent)} older version(s) record no text hashes ({', '.join(silent)}): kept "
            "what the current catalog uses; a rollback to one re-embeds what it lacks"
        )
    return used


def _add_live_upserts(live: LiveStore, used: _Used) -> None:
    """Keep the entries of the live upserts in force: the next reindex builds them."""
    for entry in live.upserted():
        if entry.record is None or entry.model_id is None:
            continue
        try:
            article = validate_record(entry.record).article
        except InvalidRecord:  # left live and reported by the reindex; nothing to keep
            continue
        used.embedding.setdefault(entry.model_id, set()).add(text_hash(embedding_text(article)))
        lexical = text_hash(lexical_text(article))
        for hashes in used.lexical.values():
            hashes.add(lexical)
