"""A generation file: rewritten after every change of a store, so that every process on the
host notices the change with one `stat` (its modification time is the generation)."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from index.state.disk_space import is_disk_full


class GenerationFile:
    def __init__(self, path: Path) -> None:
        self._path = path

    def current(self) -> str:
        """Changes whenever the store changes (cheap: one stat); "0" before the first change."""
        try:
            return str(self._path.stat().st_mtime_ns)
        except FileNotFoundError:
            return "0"

    def touch(self) -> None:
        """Mark a change: a new file renamed into place, so the mtime always moves.

        On a full disk (the change itself is committed by then) the file's times are set
        instead, which needs no data block: the change must not go unnoticed.
        """
        temporary = self._path.with_name(f".{self._path.name}.{secrets.token_hex(4)}")
        try:
            temporary.write_text(secrets.token_hex(8), encoding="utf-8")
            os.replace(temporary, self._path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            if not is_disk_full(exc):
                raise
            self._path.touch()
            moment = max(time.time_ns(), self._path.stat().st_mtime_ns + 1)
            os.utime(self._path, ns=(moment, moment))
