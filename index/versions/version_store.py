"""The versioned store: immutable version directories and an atomically flipped `CURRENT`.

    DATA_DIR/versions/<id>/        one immutable build (manifest.json + files)
    DATA_DIR/versions/.staging-*/  a build in progress; removed when the build fails
    DATA_DIR/CURRENT               the id of the version being served

A build is written to a staging directory, fsynced, renamed into place, and only then
published by replacing `CURRENT`; readers therefore see either the old or the new version.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from index.index_errors import CorruptVersionError, NoIndexError, StorageError, VersionNotFound
from index.versions.manifest import Manifest, file_sha256, read_manifest, verify_files

CURRENT_NAME = "CURRENT"
STAGING_PREFIX = ".staging-"
_VERSION_ID = re.compile(r"^\d{8}T\d{9}Z-[0-9a-f]{6}$")


def is_version_id(text: str) -> bool:
    """Whether `text` has the form of a version id (as `new_version_id` makes them)."""
    return _VERSION_ID.match(text) is not None


def new_version_id(after: str | None = None) -> str:
    """A fresh id (UTC time to the millisecond, then random hex) that sorts after `after`."""
    moment = datetime.now(UTC)
    if after is not None:
        previous = datetime.strptime(after[:18], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
        moment = max(moment, previous + timedelta(milliseconds=1))
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{secrets.token_hex(3)}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for child in path.iterdir():
        with child.open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(path)


@dataclass(frozen=True, slots=True)
class VersionInfo:
    id: str
    created_at: str
    count: int
    current: bool


class VersionStore:
    """Versions under one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.versions_dir = data_dir / "versions"
        self.current_file = data_dir / CURRENT_NAME

    def path_of(self, version: str) -> Path:
        if not _VERSION_ID.match(version):
            raise VersionNotFound(f"{version!r} is not a version id")
        path = self.versions_dir / version
        if not path.is_dir():
            raise VersionNotFound(f"no version {version!r} in {self.versions_dir}")
        return path

    def current_id(self) -> str:
        """The published version id; NoIndexError if nothing was ever published."""
        try:
            version = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise NoIndexError(
                f"no index has been published in {self.data_dir}: run `recommender reindex` first"
            ) from None
        if not _VERSION_ID.match(version):
            raise CorruptVersionError(f"{self.current_file} holds {version!r}, not a version id")
        return version

    def current_path(self) -> Path:
        return self.path_of(self.current_id())

    def version_ids(self) -> list[str]:
        """Complete versions, oldest first (ids sort by creation time)."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.versions_dir.iterdir() if p.is_dir() and _VERSION_ID.match(p.name)
        )

    def list_versions(self) -> list[VersionInfo]:
        try:
            current = self.current_id()
        except (NoIndexError, CorruptVersionError):
            current = ""
        infos = []
        for version in self.version_ids():
            try:
                manifest = read_manifest(self.versions_dir / version)
            except CorruptVersionError:
                infos.append(VersionInfo(version, "?", -1, version == current))
                continue
            infos.append(
                VersionInfo(version, manifest.created_at, manifest.count, version == current)
            )
        return infos

    def verified(self, version: str) -> tuple[Path, Manifest]:
        """The version's directory and manifest, after checking every file's checksum."""
        path = self.path_of(version)
        manifest = read_manifest(path)
        verify_files(path, manifest)
        return path, manifest

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh directory to build a version in; removed unless `commit` took it.

        A failed write in the block (a full disk) is raised as StorageError.
        """
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        path = self.versions_dir / f"{STAGING_PREFIX}{secrets.token_hex(4)}"
        path.mkdir()
        try:
            yield path
        except OSError as exc:
            raise StorageError(
                f"cannot write a new version in {self.versions_dir} ({exc}): is the disk full? "
                "Nothing was published"
            ) from exc
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def commit(self, staging: Path, version: str) -> Path:
        """Make a finished staging directory the immutable version `version`.

        Its files identical to the current version's (same checksum and size in both
        manifests) become hard links to them first: versions are never changed in place, so
        one copy on disk serves both.
        """
        self._link_unchanged(staging)
        _fsync_tree(staging)
        final = self.versions_dir / version
        os.rename(staging, final)
        _fsync_dir(self.versions_dir)
        return final

    def _link_unchanged(self, staging: Path) -> None:
        try:
            current = self.current_path()
            served, built = read_manifest(current), read_manifest(staging)
        except (NoIndexError, CorruptVersionError, VersionNotFound):
            return
        for name, entry in built.files.items():
            # Checked again: a served file damaged since would otherwise pass into this one.
            if served.files.get(name) != entry or file_sha256(current / name) != entry.sha256:
                continue
            link = staging / f".{name}.link"
            try:
                os.link(current / name, link)
            except OSError:  # another filesystem, or no links: the copy stays
                continue
            os.replace(link, staging / name)

    def publish(self, version: str) -> None:
        """Atomically point CURRENT at `version` (after verifying it)."""
        self.verified(version)
        temporary = self.data_dir / f".{CURRENT_NAME}.{secrets.token_hex(4)}"
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(version + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.current_file)
        _fsync_dir(self.data_dir)

    def rollback(self, to: str | None = None) -> str:
        """Publish `to`, or the newest intact version older than the current one."""
        if to is not None:
            self.publish(to)
            return to
        current = self.current_id()
        older = [v for v in self.version_ids() if v < current]
        for candidate in reversed(older):
            try:
                self.publish(candidate)
            except CorruptVersionError:
                continue
            return candidate
        raise VersionNotFound(f"no intact version older than {current} to roll back to")

    def prunable(self, keep: int) -> list[str]:
        """The versions `prune(keep)` would delete: all but the newest `keep`, never the
        current one."""
        try:
            current = self.current_id()
        except (NoIndexError, CorruptVersionError):
            current = ""
        versions = self.version_ids()
        return [v for v in versions[: max(0, len(versions) - keep)] if v != current]

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest `keep` versions (never the current one) and stale staging.

        Call only while holding the reindex lock: any staging directory is then left over from
        an interrupted build. A file hard-linked into a newer version stays there.
        """
        if self.versions_dir.is_dir():
            for stale in self.versions_dir.glob(f"{STAGING_PREFIX}*"):
                shutil.rmtree(stale, ignore_errors=True)
        doomed = self.prunable(keep)
        for version in doomed:
            shutil.rmtree(self.versions_dir / version, ignore_errors=True)
        return doomed
