"""The data directory's reindex lock: one build at a time per data directory.

Its own module so that serving (replica sync) takes it without importing the build pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from index.index_errors import ReindexLocked

LOCK_NAME = "reindex.lock"


@contextmanager
def reindex_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's reindex lock, or raise ReindexLocked at once.

    The lock is an OS file lock: a killed run releases it with its process.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(data_dir / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ReindexLocked(
            f"another reindex is running on {data_dir} (lock {data_dir / LOCK_NAME}); "
            "nothing was changed"
        ) from None
    try:
        yield
    finally:
        lock.release()
