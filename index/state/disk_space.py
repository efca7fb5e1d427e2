"""The data directory's disk: how much is free, whether a failed write means it is full, and
the one message that says so (`/readyz`, the status page, the stores' errors)."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

#: What a write reports when the filesystem (or the user's quota) has no room left.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: How SQLite words a write that found no room: SQLITE_FULL, and the SQLITE_IOERR it gives
#: when the WAL or a temporary file cannot grow.
_SQLITE_FULL = ("database or disk is full", "disk i/o error")


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` is a write that failed for want of room (or a failing disk, for SQLite)."""
    if isinstance(exc, sqlite3.OperationalError):
        return any(words in str(exc).lower() for words in _SQLITE_FULL)
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding `path` (or its
    nearest existing parent, for a data directory not made yet)."""
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def full_disk_message(data_dir: Path, exc: BaseException) -> str:
    """The sentence a write refused on a full disk answers with (the API's 503 detail)."""
    return (
        f"the disk of the data directory {data_dir} is full ({exc}; "
        f"{free_bytes(data_dir):,} bytes free): nothing was changed; try again once space is "
        "freed (`recommender gc`)"
    )


def low_space_warning(data_dir: Path, warn_mb: int) -> str | None:
    """A warning when the data directory's disk has less than `warn_mb` MB free, else None."""
    free = free_bytes(data_dir)
    if free >= warn_mb * 1024 * 1024:
        return None
    return (
        f"low disk space: {free:,} bytes free for the data directory {data_dir} "
        f"(below RECOMMENDER_DISK_WARN_MB={warn_mb}); writes fail with 503 when it is full, "
        "and reindex refuses to start without room for its build"
    )
