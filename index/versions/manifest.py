"""`manifest.json`: what a version holds, how it was built, and checksums of every file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from index.index_errors import CorruptVersionError

MANIFEST_NAME = "manifest.json"
FORMAT = 2
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class FileEntry:
    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """Everything needed to trust and use a version directory."""

    version: str
    created_at: str
    model: str
    model_id: str
    dimension: int
    count: int
    index: dict[str, Any]
    recall_at_10: float
    neighbours: int
    source_checksum: str
    sources: list[str]
    files: dict[str, FileEntry] = field(default_factory=dict)
    ranking: dict[str, float] = field(default_factory=dict)
    """The fusion weights the neighbours were scored with."""
    live_contained: dict[str, int] = field(default_factory=dict)
    """slug -> sequence of the live changes built into this version (the overlay skips them)."""
    backend: str = "torch"
    """How the model ran (`RECOMMENDER_ENCODER_BACKEND`); versions built before it was recorded
    were all torch. `model_id` names it too, so mixed vectors are never served together."""
    listings: list[dict[str, Any]] = field(default_factory=list)
    """How much of each paged web listing the build read, of how much
    (`recommender.ingest.listings.Listing`); none in versions built before it was recorded."""
    lexical_fit: dict[str, Any] | None = None
    """What its lexical statistics (TF-IDF vocabulary and idf, BM25) were fitted from, and how
    far the catalog moved since (`index.versions.incremental_plan.LexicalFit`); None in versions
    built before it was recorded (the next run rebuilds in full)."""
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def describe(self) -> dict[str, Any]:
        """The public summary shown by `recommender info` and `GET /v1/index`."""
        return {
            "version": self.version,
            "articles": self.count,
            "model": self.model,
            "model_id": self.model_id,
            "backend": self.backend,
            "dimension": self.dimension,
            "index": self.index,
            "recall_at_10": self.recall_at_10,
            "ranking": self.ranking,
            "built_at": self.created_at,
        }

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["files"] = {name: FileEntry(**entry) for name, entry in data["files"].items()}
        return cls(**data)


def describe_files(directory: Path, names: list[str]) -> dict[str, FileEntry]:
    """Checksums and sizes of the named files, for the manifest."""
    return {
        name: FileEntry(
            sha256=file_sha256(directory / name), bytes=(directory / name).stat().st_size
        )
        for name in names
    }


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    try:
        manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptVersionError(f"{directory.name}: {MANIFEST_NAME} is missing") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptVersionError(
            f"{directory.name}: {MANIFEST_NAME} is unreadable ({exc})"
        ) from exc
    if manifest.format != FORMAT:
        raise CorruptVersionError(
            f"{directory.name}: format {manifest.format} is not supported (expected {FORMAT})"
        )
    return manifest


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Refuse a version whose files are missing, truncated or altered."""
    for name, entry in manifest.files.items():
        path = directory / name
        if not path.is_file():
            raise CorruptVersionError(f"{directory.name}: {name} is missing")
        size = path.stat().st_size
        if size != entry.bytes:
            raise CorruptVersionError(
                f"{directory.name}: {name} is {size} bytes, the manifest says {entry.bytes}"
            )
        if file_sha256(path) != entry.sha256:
            raise CorruptVersionError(f"{directory.name}: {name} fails its checksum")
