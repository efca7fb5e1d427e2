"""The local cache behind conditional requests: validators and body of each URL fetched.

Bounded by use: every entry read or written gets a fresh modification time, and a completed
reindex records when it started (`record_run`), so `prune` drops exactly the entries of the URLs
that run no longer read (what `recommender gc` and the nightly run do).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """What a URL last answered: its validators, and the body (decompressed) they stand for."""

    url: str
    etag: str | None
    last_modified: str | None
    content_type: str
    body: bytes
    #: The headers the body came with (entries written before they were kept have none).
    headers: dict[str, str] = field(default_factory=dict)


#: The file under the cache's folder holding when the last completed reindex started.
LAST_RUN = "LAST_RUN"


class FetchCache:
    """One JSON file of validators and one body file per URL, under `folder`, written atomically.

    A damaged or half-written entry reads as absent: the next request is then unconditional.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def get(self, url: str) -> CachedAnswer | None:
        """The answer stored for `url`, if any."""
        meta_path, body_path = self._paths(url)
        try:
            meta = json.loads(meta_path.read_bytes())
            body = body_path.read_bytes()
            answer = CachedAnswer(body=body, **meta)
        except (OSError, ValueError, TypeError):
            return None
        if answer.url != url:
            return None
        for path in (meta_path, body_path):  # used now: `prune` keeps it
            with contextlib.suppress(OSError):
                os.utime(path)
        return answer

    def put(self, answer: CachedAnswer) -> None:
        """Store `answer` (only worth it when it carries a validator)."""
        meta_path, body_path = self._paths(answer.url)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {key: value for key, value in asdict(answer).items() if key != "body"}
        _write_atomically(body_path, answer.body)
        _write_atomically(meta_path, json.dumps(meta).encode())

    def record_run(self, started: float) -> None:
        """Remember that a reindex which started at `started` (epoch seconds) completed."""
        self._folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(self._folder / LAST_RUN, repr(started).encode())

    def last_run(self) -> float | None:
        """When the last completed reindex started (None: none recorded)."""
        try:
            return float((self._folder / LAST_RUN).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def prune(self, unused_since: float, *, dry_run: bool = False) -> tuple[int, int, int]:
        """Delete the entries neither read nor written since `unused_since` (epoch seconds),
        and leftovers of interrupted writes. Returns (entries removed, kept, bytes freed)."""
        removed = kept = freed = 0
        entries = {path.with_suffix("") for path in self._folder.glob("??/*.*")}
        for entry in entries:
            paths = [entry.with_suffix(".json"), entry.with_suffix(".body")]
            used = max((path.stat().st_mtime for path in paths if path.exists()), default=None)
            if used is None:
                continue
            if used >= unused_since:
                kept += 1
                continue
            removed += 1
            freed += _remove(paths, dry_run)
        leftovers = self._folder.glob("??/.tmp-*")
        freed += _remove((p for p in leftovers if p.stat().st_mtime < unused_since), dry_run)
        return removed, kept, freed

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        base = self._folder / key[:2] / key
        return base.with_suffix(".json"), base.with_suffix(".body")


def _remove(paths: Iterable[Path], dry_run: bool) -> int:
    """Delete `paths` (unless `dry_run`); their bytes."""
    freed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            freed += path.stat().st_size
            if not dry_run:
                path.unlink()
    return freed


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
