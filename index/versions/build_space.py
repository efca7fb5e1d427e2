"""Room for a build, checked before anything is embedded: a reindex that cannot fit on the
data directory's disk is refused at once, with nothing changed, rather than failing halfway.

The estimate: the new version (the served one's bytes per article x the new count x 1.2, or
8 KB per article for a first build; unchanged files are hard-linked later, so this errs large),
the cache entries of the texts the served version was not built from (a vector, and the
text's length for its TF-IDF analysis), and `RECOMMENDER_DISK_RESERVE_MB` left over for the
live stores and the logs.
"""

from __future__ import annotations

from collections.abc import Sequence

from index.index_errors import InsufficientSpace
from index.state.disk_space import free_bytes
from index.state.embedding_cache import EmbeddingCache
from index.versions.manifest import Manifest
from index.versions.text_hashes import read_text_hashes
from index.versions.version_store import VersionStore
from recommender.settings import IndexSettings

#: A version's bytes per article when none is served to measure (full text: 7 KB in
#: docs/scaling.md).
FIRST_BUILD_BYTES_PER_ARTICLE = 8 * 1024
#: Room for a version that grew since the one measured.
VERSION_GROWTH = 1.2
#: A cache entry's keys and SQLite's own bytes, beside its vector.
ENTRY_OVERHEAD = 160
#: Vector width assumed before any version tells it (generous: 1024 float32).
FIRST_BUILD_DIMENSION = 1024


def required_bytes(
    settings: IndexSettings,
    current: Manifest | None,
    texts: Sequence[str],
    hashes: Sequence[str],
    model_id: str,
    *,
    rebuild: bool,
) -> tuple[int, int]:
    """(bytes the new version may take, bytes the caches may grow by) for a build of `texts`;
    the version's share is 0 when no version will be written (`rebuild` False)."""
    if not rebuild:
        version = 0
    elif current is not None and current.count > 0:
        served = sum(entry.bytes for entry in current.files.values())
        version = int(served / current.count * len(texts) * VERSION_GROWTH)
    else:
        version = int(FIRST_BUILD_BYTES_PER_ARTICLE * len(texts) * VERSION_GROWTH)
    present = _embedded(settings, current, hashes, model_id)
    vector = 4 * (current.dimension if current is not None else FIRST_BUILD_DIMENSION)
    new = {h: text for h, text in zip(hashes, texts, strict=True) if h not in present}
    growth = sum(len(text.encode("utf-8")) + vector + ENTRY_OVERHEAD for text in new.values())
    return version, growth


def _embedded(
    settings: IndexSettings, current: Manifest | None, hashes: Sequence[str], model_id: str
) -> set[str]:
    """Which of `hashes` need no embedding: those the served version was built from (a set
    difference), else those in the cache (a lookup, slower: versions before text hashes)."""
    if current is not None and current.model_id == model_id:
        path = VersionStore(settings.data_dir).versions_dir / current.version
        used = read_text_hashes(path, current)
        if used is not None:
            return used.embedding
    cache = EmbeddingCache(settings.embedding_cache_path)
    try:
        return cache.present(model_id, hashes)
    finally:
        cache.close()


def require_room(
    settings: IndexSettings,
    current: Manifest | None,
    texts: Sequence[str],
    hashes: Sequence[str],
    model_id: str,
    *,
    rebuild: bool,
) -> None:
    """Raise InsufficientSpace unless the data directory's disk has room for the build of
    `texts` (`required_bytes`) and `settings.disk_reserve_mb` more."""
    version, growth = required_bytes(settings, current, texts, hashes, model_id, rebuild=rebuild)
    reserve = settings.disk_reserve_mb * 1024 * 1024
    needed = version + growth + reserve
    free = free_bytes(settings.data_dir)
    if free >= needed:
        return
    raise InsufficientSpace(
        f"not enough free space for this build in the data directory {settings.data_dir}: "
        f"{free:,} bytes free, {needed:,} needed (a new version ~{version:,}, cache growth "
        f"~{growth:,}, RECOMMENDER_DISK_RESERVE_MB {settings.disk_reserve_mb}); nothing was "
        "changed. Free space (`recommender gc`, a lower RECOMMENDER_KEEP_VERSIONS) or grow the "
        "disk, then run again"
    )
