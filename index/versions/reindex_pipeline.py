"""The reindex job: feeds → articles → embeddings (cached) → index → verified, published version.

Its stages (read, embed, analyse, index, fit, neighbours, write, publish; each timed with its
peak memory in the summary) hold the catalog compactly: of each article its card and text hashes
(`compact_catalog`), the texts still to embed or analyse put aside past a memory budget, the
vectors and analyses read back from their caches a block at a time into arrays. So memory grows
with the catalog by little more than the version's own arrays.

Safe to interrupt at any point: embeddings and term counts are committed to their caches batch
by batch, the version is built in a staging directory, and `CURRENT` flips only after the new
version is complete and verified. A file lock keeps two runs from working on one data directory.

Longer than ~400 lines on purpose: it is the one linear story of a reindex (`_reindex_locked`),
whose steps the evaluation reuses (`embed_texts`, `analyse_articles`, `build_content`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson
from numpy.typing import NDArray
from tqdm import tqdm

from index.index_errors import (
    CatalogShrinkRefused,
    CorruptVersionError,
    NoIndexError,
)
from index.state.embedding_cache import EmbeddingCache
from index.state.live_store import LiveEntry, LiveStore
from index.state.state_stores import open_stores
from index.state.term_count_cache import TermCountCache
from index.versions.block_executor import LOCAL, BlockExecutor, BlockJob
from index.versions.build_space import require_room
from index.versions.cache_gc import collect_after_publishing
from index.versions.compact_catalog import (
    DEFAULT_BLOCKS,
    EMBEDDING,
    LEXICAL,
    BlockSizes,
    CatalogEntry,
    CatalogReader,
    Scratch,
    TextLookup,
    run_scratch,
)
from index.versions.incremental_neighbours import build_incremental
from index.versions.incremental_plan import Rebuild, RebuildPlan, plan_rebuild
from index.versions.index_version import VersionContent, publication_times, write_version
from index.versions.manifest import Manifest, read_manifest
from index.versions.neighbours import (
    ScoredPools,
    nearest_other_rows,
    pool_scorer,
    precompute_neighbours,
)
from index.versions.ray_blocks import block_executor, encoder_engine
from index.versions.record_keys import ServedRecords, write_record_keys
from index.versions.reindex_lock import reindex_lock
from index.versions.reindex_stages import StageMeter
from index.versions.remote_store import RemoteStore
from index.versions.text_hashes import write_text_hashes
from index.versions.vector_index import build_tuned
from index.versions.version_store import VersionStore, new_version_id
from recommender import fault_points
from recommender.articles import Article, lexical_text, text_hash, validate_record
from recommender.encoding.encoder_protocol import Encoder, longest_first
from recommender.errors import FeedError, InvalidRecord, StrictModeError
from recommender.ingest.feeds import FeedReport, read_catalog
from recommender.ingest.listings import Listing
from recommender.ingest.options import ReadOptions, SourceChoices, read_options
from recommender.ingest.record_memo import memo_fingerprint
from recommender.ranking import FusionWeights
from recommender.settings import IndexSettings
from recommender.signals.base import Catalog, Side
from recommender.signals.registry import SIGNALS, fusion_weights
from recommender.tfidf import CatalogTerms, CatalogTermsBuilder, TextTerms, analyse

log = logging.getLogger(__name__)

#: Texts encoded (and committed to the cache) per step; small enough to lose little on a kill.
ENCODE_CHUNK = 256
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReindexSummary:
    """The one-line JSON a scheduler reads at the end of a run."""

    version: str
    read: int
    bad: int
    embedded: int
    reused: int
    indexed: int
    seconds: float
    published: bool
    listings: list[dict[str, Any]]
    """How much of each paged web listing was read, of how much (`Listing.to_dict`)."""
    complete: bool
    """False when a listing was cut at the page limit (`--allow-partial`)."""
    stages: list[dict[str, Any]]
    """Each stage that ran, in order: `{"stage", "seconds", "peak_memory_mb", "engine"}`
    (`StageMeter`)."""
    rebuild: Rebuild
    """"full" (the lexical statistics refitted, every list recomputed) or "incremental"
    (`index.versions.incremental_plan`)."""
    rebuild_reason: str

    @classmethod
    def of(
        cls,
        report: FeedReport,
        version: str,
        indexed: int,
        embedded: int,
        started: float,
        published: bool,
        meter: StageMeter,
        plan: RebuildPlan | None = None,
    ) -> ReindexSummary:
        """The summary of a run that read `report`, started at `started` (monotonic)."""
        return cls(
            version=version,
            read=report.read,
            bad=len(report.bad),
            embedded=embedded,
            reused=indexed - embedded,
            indexed=indexed,
            seconds=round(time.monotonic() - started, 3),
            published=published,
            listings=[listing.to_dict() for listing in report.listings],
            complete=all(listing.complete for listing in report.listings),
            stages=meter.to_list(),
            rebuild=plan.rebuild if plan is not None else "incremental",
            rebuild_reason=plan.reason if plan is not None else "nothing changed: kept as served",
        )

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()


def _source_checksum(
    cards: Sequence[dict[str, Any]],
    embedding_hashes: Sequence[str],
    lexical_hashes: Sequence[str],
    model_id: str,
    settings: IndexSettings,
) -> str:
    """What a version was built from: the build's settings, and each article's card and the
    hashes of both its texts (an edit past the embedding's lead changes the lexical one only)."""
    digest = hashlib.sha256()
    build = {
        "model_id": model_id,
        "neighbours": settings.neighbours,
        "exact_search_max": settings.exact_search_max,
        "ann_index": settings.ann_index,
        "ranking": dict(fusion_weights(settings.fusion)),
    }
    if settings.ann_index == "hnsw":  # an IVF build does not depend on it
        build["hnsw_ef_construction"] = settings.hnsw_ef_construction
    digest.update(orjson.dumps(build, option=orjson.OPT_SORT_KEYS))
    for card, embedded, lexical in zip(cards, embedding_hashes, lexical_hashes, strict=True):
        digest.update(embedded.encode())
        digest.update(lexical.encode())
        digest.update(orjson.dumps(card, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def _current_manifest(store: VersionStore) -> Manifest | None:
    try:
        return read_manifest(store.current_path())
    except (NoIndexError, CorruptVersionError):
        return None


def texts_by_hash(hashes: Sequence[str], texts: Sequence[str]) -> TextLookup:
    """Texts held in memory, looked up by their hashes (`embed_texts`, `analyse_texts`)."""
    text_of = dict(zip(hashes, texts, strict=True))
    return lambda wanted: [text_of[h] for h in wanted]


def _missing(
    hashes: Sequence[str], known: Callable[[Sequence[str]], set[str]], full: bool, block: int
) -> list[str]:
    """The distinct hashes, in order, that `known` (a cache, a block at a time) lacks; all of
    them with `full`."""
    missing: dict[str, None] = {}
    for start in range(0, len(hashes), block):
        chunk = hashes[start : start + block]
        have = set() if full else known(chunk)
        missing.update((h, None) for h in chunk if h not in have)
    return list(missing)


def embed_texts(
    hashes: Sequence[str],
    texts: TextLookup,
    encoder: Encoder,
    cache: EmbeddingCache,
    *,
    full: bool = False,
    show_progress: bool = False,
    block: int = DEFAULT_BLOCKS.rows,
) -> tuple[NDArray[np.float32], int]:
    """Vectors for the texts of `hashes`, in order, encoding only what the cache lacks (all with
    `full`) and committing each chunk to the cache; `texts` gives the texts to encode.

    Returns the vectors and how many texts were encoded. The vectors are read back from the
    cache a block at a time into one array, so nothing else grows with the catalog.
    """
    model_id = encoder.model_id
    missing = _missing(hashes, lambda chunk: cache.known(model_id, chunk), full, block)
    with tqdm(
        total=len(missing), desc="embedding", unit="text", disable=not show_progress or not missing
    ) as bar:
        for start in range(0, len(missing), ENCODE_CHUNK):
            chunk = missing[start : start + ENCODE_CHUNK]
            chunk_texts = texts(chunk)
            # Longest first, as the encoders order one call's texts (one call per batch here).
            # The cache takes each vector by its hash, so the order is not restored.
            order = longest_first(chunk_texts)
            chunk = [chunk[row] for row in order]
            chunk_texts = [chunk_texts[row] for row in order]
            # One encoder batch per call, so that the progress bar moves after each.
            step = max(1, encoder.batch_size)
            parts = []
            for at in range(0, len(chunk), step):
                parts.append(encoder.encode(chunk_texts[at : at + step]))
                bar.update(len(parts[-1]))
            cache.put_many(model_id, zip(chunk, np.concatenate(parts), strict=True))
    if not hashes:
        return np.zeros((0, 0), dtype=np.float32), 0
    vectors: NDArray[np.float32] | None = None
    for start in range(0, len(hashes), block):
        rows = hashes[start : start + block]
        stored = cache.get_many(model_id, rows)
        if vectors is None:
            vectors = np.empty((len(hashes), len(stored[rows[0]])), dtype=np.float32)
        vectors[start : start + len(rows)] = [stored[h] for h in rows]
    assert vectors is not None
    return vectors, len(missing)


def _names(settings: IndexSettings) -> bool:
    """Whether analyses seek proper nouns: only when the ranking boosts them."""
    return bool(fusion_weights(settings.fusion)["name_boost"])


def _analyse_block(names: bool, texts: list[str]) -> list[TextTerms]:
    """A chunk of the analyse stage (a `BlockJob`'s run)."""
    return [analyse(text, names) for text in texts]


def analyse_texts(
    hashes: Sequence[str],
    texts: TextLookup,
    settings: IndexSettings,
    *,
    full: bool = False,
    block: int = DEFAULT_BLOCKS.rows,
    executor: BlockExecutor = LOCAL,
) -> int:
    """Store in the term-count cache the TF-IDF analysis of each text of `hashes` that it
    lacks (all with `full`), a chunk at a time, each analysed by `executor`; `texts` gives the
    texts. Returns how many texts were analysed."""
    names = _names(settings)
    cache = TermCountCache(settings.term_count_cache_path)
    try:
        missing = _missing(hashes, lambda chunk: cache.known(names, chunk), full, block)
        chunks = [missing[at : at + ENCODE_CHUNK] for at in range(0, len(missing), ENCODE_CHUNK)]
        job = BlockJob("analyse", names, _analyse_block)
        analysed = executor.map(job, (texts(chunk) for chunk in chunks))
        for chunk, terms in zip(chunks, analysed, strict=True):
            cache.put_many(names, zip(chunk, terms, strict=True))
    finally:
        cache.close()
    return len(missing)


def analysed_terms(
    hashes: Sequence[str], settings: IndexSettings, *, block: int = DEFAULT_BLOCKS.rows
) -> CatalogTerms:
    """The stored analyses of the texts of `hashes` (`analyse_texts`), in order, as arrays:
    read a block at a time, so the Python objects of one block at most are alive at once."""
    names = _names(settings)
    builder = CatalogTermsBuilder()
    cache = TermCountCache(settings.term_count_cache_path)
    try:
        for start in range(0, len(hashes), block):
            chunk = hashes[start : start + block]
            stored = cache.get_many(names, chunk)
            builder.add(stored[h] for h in chunk)
    finally:
        cache.close()
    return builder.build()


def analyse_articles(
    articles: Sequence[Article], settings: IndexSettings, *, full: bool = False
) -> tuple[list[str], int]:
    """`analyse_texts` of articles held in memory (the evaluation's): the hashes of their
    lexical texts (what `build_content` reads their analyses by), and how many were analysed."""
    texts = [lexical_text(article) for article in articles]
    hashes = [text_hash(text) for text in texts]
    return hashes, analyse_texts(hashes, texts_by_hash(hashes, texts), settings, full=full)


def build_content(
    cards: Sequence[dict[str, Any]],
    vectors: NDArray[np.float32],
    lexical_hashes: Sequence[str],
    settings: IndexSettings,
    show_progress: bool = False,
    *,
    meter: StageMeter | None = None,
    block: int = DEFAULT_BLOCKS.rows,
    executor: BlockExecutor = LOCAL,
    scratch_dir: Path | None = None,
) -> tuple[VersionContent, float, FusionWeights]:
    """The index, signals, neighbours and cards of a version from the articles' cards, vectors
    and the hashes of their lexical texts, whose analyses the term-count cache holds
    (`analyse_texts`); also returns the index's recall@10 and the parameters the neighbours
    were scored with (with those the signals measured on the catalog). Its stages (index, fit,
    neighbours) are recorded in `meter`; the neighbour lists are computed in blocks by
    `executor` (the index and the fit stay here: they are a small part of the time). What the
    two stages pass on is kept in `scratch_dir` (a run's scratch directory)."""
    meter = meter if meter is not None else StageMeter()
    with meter.stage("index"):
        index, recall = build_tuned(vectors, settings)
    fault_points.reached("reindex-indexed")
    # Pools the fit scores are kept (on disk) for the neighbour stage here; a Ray build scores
    # again in its workers rather than ship them.
    scored = ScoredPools(len(vectors), scratch_dir) if executor.engine == "local" else None
    try:
        with meter.stage("fit"):
            published = publication_times(cards)
            terms = analysed_terms(lexical_hashes, settings, block=block)
            nearest = nearest_other_rows(index, vectors)
            pools = pool_scorer(index, vectors, published, settings.neighbours, scored)
            catalog = Catalog(terms, vectors, published, nearest, block, pools)
            weights = fusion_weights(settings.fusion)
            for signal in SIGNALS:
                weights = FusionWeights(**{**weights, **signal.measure(catalog, weights)})
            parts: dict[str, Any] = {}
            for signal in SIGNALS:  # in order: a signal may build on the parts of those before it
                parts[signal.name] = signal.fit(catalog, weights, parts)
            del catalog, terms  # what the signals need of the analyses is in their parts now
        fault_points.reached("reindex-fitted")
        with meter.stage("neighbours", executor.engine):
            side = Side(vectors, published, {s.name: s.rows(parts[s.name]) for s in SIGNALS})
            with tqdm(
                total=len(vectors), desc="neighbours", unit="article", disable=not show_progress
            ) as bar:
                ids, scores = precompute_neighbours(
                    index,
                    side,
                    parts,
                    weights,
                    settings.neighbours,
                    bar.update,
                    block,
                    executor,
                    scored,
                )
    finally:
        if scored is not None:
            scored.close()
    fault_points.reached("reindex-neighboured")
    return VersionContent(cards, vectors, index, ids, scores, parts), recall, weights


def build_manifest(
    version: str,
    settings: IndexSettings,
    model_id: str,
    content: VersionContent,
    recall: float,
    weights: FusionWeights,
    checksum: str,
    sources: Sequence[Path | str],
    live_contained: Mapping[str, int] | None = None,
    listings: Sequence[Listing] = (),
    lexical_fit: dict[str, Any] | None = None,
) -> Manifest:
    """The manifest of a build (its files' checksums are added when they are written)."""
    return Manifest(
        version=version,
        created_at=datetime.now(UTC).isoformat(),
        model=settings.model,
        model_id=model_id,
        dimension=int(content.vectors.shape[1]),
        count=len(content.vectors),
        index=content.index.spec.to_dict(),
        recall_at_10=round(recall, 4),
        neighbours=int(content.neighbour_ids.shape[1]),
        source_checksum=checksum,
        sources=[str(source) for source in sources],
        ranking=dict(weights),
        live_contained=dict(live_contained or {}),
        backend=settings.backend,
        listings=[listing.to_dict() for listing in listings],
        lexical_fit=lexical_fit,
    )


def reindex(
    settings: IndexSettings,
    sources: Sequence[Path | str],
    encoder: Encoder,
    *,
    strict: bool = False,
    full: bool = False,
    allow_shrink: bool = False,
    show_progress: bool = False,
    report: FeedReport | None = None,
    choices: SourceChoices | None = None,
    blocks: BlockSizes = DEFAULT_BLOCKS,
) -> ReindexSummary:
    """Build and publish a new version from the feeds (or keep the current one if unchanged).

    Incremental by default: cached embeddings are reused and, when nothing that affects the
    build changed, no new version is written. `full` re-embeds everything and always publishes.
    A build that would lose more than `settings.max_shrink` of the served catalog raises
    CatalogShrinkRefused before anything is embedded, unless `allow_shrink`.
    Sources are read as `settings.ingest` says (RECOMMENDER_FEED_* and RECOMMENDER_FETCH_*, the
    fetch cache in the data directory), with this run's `choices` (field map, page fetching,
    partial listings).
    With `settings.store_url`, the version is then uploaded there (unless it is already) and
    becomes the shared store's CURRENT, which every replica follows.
    The stages hold the catalog `blocks` at a time (beyond what the version's own arrays need);
    the summary records each stage's time and peak memory.
    """
    started = time.monotonic()
    report = report if report is not None else FeedReport()
    store = VersionStore(settings.data_dir)
    remote = RemoteStore(settings.store_url) if settings.store_url is not None else None
    with reindex_lock(settings.data_dir):
        stores = open_stores(settings)
        try:
            with stores.reindex_lock():
                summary = _reindex_locked(
                    settings,
                    sources,
                    encoder,
                    stores.live,
                    store,
                    strict=strict,
                    full=full,
                    allow_shrink=allow_shrink,
                    show_progress=show_progress,
                    report=report,
                    read=read_options(
                        settings.ingest, settings.data_dir, choices, show_progress=show_progress
                    ),
                    started=started,
                    blocks=blocks,
                )
                if remote is not None:
                    remote.publish(store, summary.version, settings.keep_versions)
        finally:
            stores.close()
        return summary


def check_shrink(served: int, built: int, max_shrink: float) -> None:
    """Raise CatalogShrinkRefused when a catalog of `built` articles would replace the `served`
    one and lose more than the share `max_shrink` of it."""
    lost = served - built
    if served <= 0 or lost / served <= max_shrink:
        return
    raise CatalogShrinkRefused(
        f"the sources now give {built:,} article(s), {lost:,} fewer than the {served:,} served: "
        f"{lost / served:.1%} of the catalog would be lost, more than the "
        f"{max_shrink:.1%} allowed (RECOMMENDER_MAX_SHRINK); nothing was published and the "
        "served version is untouched. Check the sources and the bad records reported, or run "
        "again with --allow-shrink if the loss is intended"
    )


@dataclass(frozen=True, slots=True)
class LiveMerge:
    """What merging the live changes into a feed did."""

    superseded: list[LiveEntry]
    """Upserts of slugs the feed holds: the feed is authoritative, so they are retired once
    the build is published."""
    contained: dict[str, int]
    """slug -> sequence of the live changes the build carries (live-only upserts as articles,
    retractions as absences, superseded upserts as the feed's article): the overlay of the
    version skips them, so a version serves as built even before its superseded upserts are
    retired (a run killed between publishing and retiring)."""


def merge_live(
    feed: dict[str, T], entries: Sequence[LiveEntry], keep: Callable[[Article], T]
) -> LiveMerge:
    """Apply live changes to a feed's articles in place (see `index.state.live_store` for the rule).

    `entries` must have been read before the feed was. Retracted slugs are removed; live upserts
    the feed lacks are added, as `keep` makes them (what the feed holds of each article).
    """
    superseded = []
    contained = {}
    for entry in entries:
        if entry.retracted:
            feed.pop(entry.slug, None)
            contained[entry.slug] = entry.seq
        elif entry.slug in feed:
            superseded.append(entry)
            contained[entry.slug] = entry.seq
        elif entry.record is not None:
            try:
                feed[entry.slug] = keep(validate_record(entry.record).article)
            except InvalidRecord as exc:  # stored before a rule it breaks: left live, reported
                log.error("live article %s is not rebuilt: %s", entry.slug, exc)
                continue
            contained[entry.slug] = entry.seq
    return LiveMerge(superseded, contained)


def _reindex_locked(
    settings: IndexSettings,
    sources: Sequence[Path | str],
    encoder: Encoder,
    live: LiveStore,
    store: VersionStore,
    *,
    strict: bool,
    full: bool,
    allow_shrink: bool,
    show_progress: bool,
    report: FeedReport,
    read: ReadOptions,
    started: float,
    blocks: BlockSizes,
) -> ReindexSummary:
    meter = StageMeter()
    # Of each article only its text hashes are kept; its card waits in the scratch directory,
    # and so do the texts that still need embedding or analysing, past a memory budget.
    with run_scratch(settings.data_dir, blocks.spill_memory) as scratch:
        with meter.stage("read"):
            # Live changes first: one made while the feed is read is newer than the feed, so
            # this run must neither absorb nor retire it.
            entries = live.entries()
            current = _current_manifest(store)
            served = None if full or current is None else (store.current_path(), current)
            catalog, merged = _read_catalog(
                settings, sources, encoder, entries, scratch, report, read, full, served, blocks
            )
            cards = scratch.cards.cards(catalog)
            log.info("read: %d of %d records carried over unparsed", report.recalled, report.read)
        fault_points.reached("reindex-read")
        if strict and report.bad:
            raise StrictModeError(
                f"{len(report.bad)} bad record(s) and --strict is on; nothing was published "
                f"(first: {report.bad[0]})"
            )
        if not catalog:
            raise FeedError("the feeds hold no valid article; nothing was published")
        # Before any embedding: a broken export or a wrong URL must cost nothing and change
        # nothing.
        if current is not None and not allow_shrink:
            # Retractions made through the live API since the build are the editors' choice,
            # not a loss: the comparison is with what readers are served now.
            retracted = sum(
                1 for e in entries if e.retracted and current.live_contained.get(e.slug) != e.seq
            )
            check_shrink(current.count - retracted, len(catalog), settings.max_shrink)
        embedding_hashes = [entry.embedding_hash for entry in catalog]
        lexical_hashes = [entry.lexical_hash for entry in catalog]
        origins = [entry.origin for entry in catalog]
        del catalog
        checksum = _source_checksum(
            cards, embedding_hashes, lexical_hashes, encoder.model_id, settings
        )
        # Also before any embedding: a build that cannot fit on the disk must not start.
        rebuild = full or current is None or current.source_checksum != checksum
        require_room(settings, current, len(cards), scratch.texts.new, rebuild=rebuild)
        with meter.stage("embed", encoder_engine(encoder)):
            cache = EmbeddingCache(settings.embedding_cache_path)
            try:
                vectors, embedded = embed_texts(
                    embedding_hashes,
                    scratch.texts.lookup(EMBEDDING),
                    encoder,
                    cache,
                    full=full,
                    show_progress=show_progress,
                    block=blocks.rows,
                )
            finally:
                cache.close()
        fault_points.reached("reindex-embedded")
        if current is not None and current.source_checksum == checksum and not full:
            # Nothing published: a live change made since the current version stays in force;
            # one the current version already absorbed (its run was killed before retiring it)
            # goes.
            live.retire_upserts(
                [e for e in merged.superseded if current.live_contained.get(e.slug) == e.seq]
            )
            return ReindexSummary.of(
                report, current.version, len(cards), embedded, started, False, meter
            )
        # Full, or only what the change reaches (`index.versions.incremental_plan`).
        plan = plan_rebuild(
            settings,
            None if current is None else (store.current_path(), current),
            cards,
            embedding_hashes,
            lexical_hashes,
            model_id=encoder.model_id,
            full=full,
        )
        log.info("reindex: %s rebuild (%s)", plan.rebuild, plan.reason)
        # The analyse and neighbours stages run in blocks on the engine (`--engine ray`: Ray).
        executor = block_executor(settings)
        with meter.stage("analyse", executor.engine):
            analyse_texts(
                plan.to_analyse(lexical_hashes),
                scratch.texts.lookup(LEXICAL),
                settings,
                full=full,
                block=blocks.rows,
                executor=executor,
            )
        fault_points.reached("reindex-analysed")
        if plan.reuse is None:
            content, recall, weights = build_content(
                cards,
                vectors,
                lexical_hashes,
                settings,
                show_progress,
                meter=meter,
                block=blocks.rows,
                executor=executor,
                scratch_dir=scratch.directory,
            )
        else:
            content, recall, weights = build_incremental(
                cards,
                vectors,
                lexical_hashes,
                settings,
                store,
                plan.reuse,
                lambda hashes: analysed_terms(hashes, settings, block=blocks.rows),
                meter=meter,
                block=blocks.rows,
            )
        with meter.stage("write"):
            existing = store.version_ids()
            version = new_version_id(after=existing[-1] if existing else None)
            manifest = build_manifest(
                version,
                settings,
                encoder.model_id,
                content,
                recall,
                weights,
                checksum,
                sources,
                merged.contained,
                report.listings,
                plan.for_version(version),
            )
            with store.staging() as staging:
                # What gc may not prune.
                recorded = write_text_hashes(staging, embedding_hashes, lexical_hashes)
                # What the next run recognises unparsed.
                keyed = write_record_keys(staging, origins, memo_fingerprint(read.field_map))
                write_version(staging, content, manifest, [recorded, *keyed])
                fault_points.reached("reindex-staged")
                store.commit(staging, version)
    fault_points.reached("reindex-committed")
    with meter.stage("publish"):
        store.publish(version)
        fault_points.reached("reindex-published")
        live.retire_upserts(merged.superseded)
        fault_points.reached("reindex-retired")
        # Old versions and unused cache entries.
        collect_after_publishing(settings, store, live, started)
    return ReindexSummary.of(report, version, len(cards), embedded, started, True, meter, plan)


def _read_catalog(
    settings: IndexSettings,
    sources: Sequence[Path | str],
    encoder: Encoder,
    entries: Sequence[LiveEntry],
    scratch: Scratch,
    report: FeedReport,
    read: ReadOptions,
    full: bool,
    served: tuple[Path, Manifest] | None,
    blocks: BlockSizes,
) -> tuple[list[CatalogEntry], LiveMerge]:
    """The read stage: the feeds with the live changes merged, as compact entries in catalog
    order, their cards and the texts the caches lack (all with `full`) put in `scratch`. The
    records the `served` version was built from, byte for byte, are carried over from it
    unparsed (`index.versions.record_keys`)."""
    embeddings = EmbeddingCache(settings.embedding_cache_path)
    terms = TermCountCache(settings.term_count_cache_path)
    names = _names(settings)
    try:

        def cached(
            embedding_hashes: Sequence[str], lexical_hashes: Sequence[str]
        ) -> NDArray[np.bool_]:
            vectors = embeddings.known(encoder.model_id, embedding_hashes)
            analyses = terms.known(names, lexical_hashes)
            pairs = zip(embedding_hashes, lexical_hashes, strict=True)
            return np.array([e in vectors and t in analyses for e, t in pairs], dtype=np.bool_)

        records = None
        if served is not None:
            fingerprint = memo_fingerprint(read.field_map)
            records = ServedRecords.load(*served, fingerprint, cached, blocks.rows)
        reader = CatalogReader(
            embeddings,
            terms,
            scratch,
            model_id=encoder.model_id,
            names=names,
            full=full,
            block=blocks.rows,
            served=records,
        )
        feed = read_catalog(sources, report, read, reader.keep, reader)
        merged = merge_live(feed, entries, reader.keep)
        reader.flush()
    finally:
        terms.close()
        embeddings.close()
    return list(feed.values()), merged
