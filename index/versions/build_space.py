"""Room for a build, checked before anything is embedded: a reindex that cannot fit on the
data directory's disk is refused at once, with nothing changed, rather than failing halfway.

The estimate: the new version (the served one's bytes per article x the new count x 1.2, or
8 KB per article for a first build; unchanged files are hard-linked later, so this errs large),
the cache entries of the texts the caches lack (a vector each, and the text's length for its
TF-IDF analysis), and `RECOMMENDER_DISK_RESERVE_MB` left over for the
live stores and the logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from index.index_errors import InsufficientSpace
from index.state.disk_space import free_bytes
from index.versions.manifest import Manifest
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


@dataclass(frozen=True, slots=True)
class NewTexts:
    """The texts of a build that its caches lack, as the read stage found them."""

    embedding: int
    """How many texts need a vector."""
    lexical_bytes: int
    """The UTF-8 bytes of the texts that need a TF-IDF analysis."""


def required_bytes(
    settings: IndexSettings,
    current: Manifest | None,
    articles: int,
    new_texts: NewTexts,
    *,
    rebuild: bool,
) -> tuple[int, int]:
    """(bytes the new version may take, bytes the caches may grow by) for a build of `articles`
    whose texts the caches lack are `new_texts`; the version's share is 0 when no version will
    be written (`rebuild` False)."""
    if not rebuild:
        version = 0
    elif current is not None and current.count > 0:
        served = sum(entry.bytes for entry in current.files.values())
        version = int(served / current.count * articles * VERSION_GROWTH)
    else:
        version = int(FIRST_BUILD_BYTES_PER_ARTICLE * articles * VERSION_GROWTH)
    vector = 4 * (current.dimension if current is not None else FIRST_BUILD_DIMENSION)
    growth = new_texts.embedding * (vector + ENTRY_OVERHEAD) + new_texts.lexical_bytes
    return version, growth


def require_room(
    settings: IndexSettings,
    current: Manifest | None,
    articles: int,
    new_texts: NewTexts,
    *,
    rebuild: bool,
) -> None:
    """Raise InsufficientSpace unless the data directory's disk has room for the build of
    `articles` (`required_bytes`) and `settings.disk_reserve_mb` more."""
    version, growth = required_bytes(settings, current, articles, new_texts, rebuild=rebuild)
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
