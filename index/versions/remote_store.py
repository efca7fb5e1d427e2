"""Published versions in a store that several hosts share, named by an fsspec URL.

    STORE_URL/versions/<id>/   the files of a version; manifest.json is written last
    STORE_URL/CURRENT          the id every replica serves; written after its version

`file:///mnt/shared/recommender` is a shared filesystem; `s3://bucket/prefix` needs the s3fs
package (`pip install 'related-articles[s3]'`), `gs://` gcsfs, and so on. Credentials and
endpoints come from the backend's own configuration (AWS_* variables, FSSPEC_S3_* options).

A reader trusts nothing it fetches: a version is downloaded into a staging directory and
checked against its manifest's checksums before it may be committed. `CURRENT` is replaced
by a rename (atomic on a local or network filesystem) or a single object write (atomic on
object stores). This is the only module that imports fsspec.
"""

from __future__ import annotations

import secrets
from pathlib import Path, PurePosixPath
from typing import Any

from fsspec.core import url_to_fs

from index.index_errors import CorruptVersionError, RemoteStoreError, VersionNotFound
from index.versions.manifest import MANIFEST_NAME, Manifest, read_manifest, verify_files
from index.versions.version_store import CURRENT_NAME, VersionStore, is_version_id

__all__ = ["RemoteStore"]


class RemoteStore:
    """The shared version store at `url`. Failures of the backend raise RemoteStoreError."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            fs, root = url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise RemoteStoreError(f"cannot open the version store {url}: {exc}") from exc
        self._fs: Any = fs  # fsspec is untyped; every use is below
        self._root = str(root).rstrip("/")

    def _path(self, *parts: str) -> str:
        return "/".join([self._root, *parts])

    def _version_path(self, version: str, *names: str) -> str:
        return self._path("versions", version, *names)

    def current_id(self) -> str | None:
        """The id in the store's CURRENT, or None when nothing was published there yet."""
        text = self._read_current()
        if text is None:
            return None
        if not is_version_id(text):
            raise CorruptVersionError(f"{self.url}/{CURRENT_NAME} holds {text!r}, not a version id")
        return text

    def _read_current(self) -> str | None:
        try:
            return (
                bytes(self._fs.cat_file(self._path(CURRENT_NAME))).decode(errors="replace").strip()
            )
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("read CURRENT from", exc) from exc

    def has(self, version: str) -> bool:
        """Whether the store holds `version` completely (its manifest is written last)."""
        try:
            return bool(self._fs.exists(self._version_path(version, MANIFEST_NAME)))
        except OSError as exc:
            raise self._error("look into", exc) from exc

    def version_ids(self) -> list[str]:
        """Ids of the versions in the store, oldest first (complete or not)."""
        try:
            entries = self._fs.ls(self._path("versions"), detail=False)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._error("list", exc) from exc
        return sorted(
            name for name in (PurePosixPath(str(e)).name for e in entries) if is_version_id(name)
        )

    def publish(self, local: VersionStore, version: str, keep: int) -> None:
        """Make `version` of `local` the store's CURRENT, uploading it first if it is not there.

        Then delete all but the newest `keep` versions of the store (never the current one).
        """
        if self._read_current() == version:  # a damaged CURRENT is simply replaced
            return
        if not self.has(version):
            path, manifest = local.verified(version)
            self._upload(path, manifest)
        self._set_current(version)
        self._prune(keep, current=version)

    def download(self, version: str, staging: Path) -> Manifest:
        """Fetch `version` into the empty directory `staging` and verify every checksum.

        Raises VersionNotFound when the store lacks it, CorruptVersionError when what arrived
        does not match its manifest.
        """
        manifest_path = self._version_path(version, MANIFEST_NAME)
        try:
            self._fs.get_file(manifest_path, str(staging / MANIFEST_NAME))
        except FileNotFoundError:
            raise VersionNotFound(
                f"the version store {self.url} has no version {version}"
            ) from None
        except OSError as exc:
            raise self._error("download from", exc) from exc
        manifest = read_manifest(staging)
        if manifest.version != version:
            raise CorruptVersionError(f"{manifest_path} describes version {manifest.version}")
        for name in manifest.files:
            if PurePosixPath(name).name != name or name in (".", "..", MANIFEST_NAME):
                raise CorruptVersionError(f"{manifest_path} lists a bad file name {name!r}")
            try:
                self._fs.get_file(self._version_path(version, name), str(staging / name))
            except FileNotFoundError:
                raise CorruptVersionError(f"{self.url}: {version} lacks its {name}") from None
            except OSError as exc:
                raise self._error("download from", exc) from exc
        verify_files(staging, manifest)
        return manifest

    def _upload(self, directory: Path, manifest: Manifest) -> None:
        try:
            self._fs.makedirs(self._version_path(manifest.version), exist_ok=True)
            for name in [*manifest.files, MANIFEST_NAME]:
                self._fs.put_file(str(directory / name), self._version_path(manifest.version, name))
        except OSError as exc:
            raise self._error("upload to", exc) from exc

    def _set_current(self, version: str) -> None:
        temporary = self._path(f".{CURRENT_NAME}.{secrets.token_hex(4)}")
        try:
            self._fs.pipe_file(temporary, f"{version}\n".encode())
            self._fs.mv(temporary, self._path(CURRENT_NAME))
        except OSError as exc:
            raise self._error("write CURRENT to", exc) from exc

    def _prune(self, keep: int, *, current: str) -> None:
        versions = self.version_ids()
        doomed = [v for v in versions[: max(0, len(versions) - keep)] if v != current]
        try:
            for version in doomed:
                # The manifest goes first: a half-deleted version then reads as incomplete.
                if self.has(version):
                    self._fs.rm_file(self._version_path(version, MANIFEST_NAME))
                self._fs.rm(self._version_path(version), recursive=True)
        except OSError as exc:
            raise self._error("prune", exc) from exc

    def _error(self, action: str, exc: OSError) -> RemoteStoreError:
        return RemoteStoreError(f"cannot {action} the version store {self.url}: {exc}")
