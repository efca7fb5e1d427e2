"""Loading the published version for serving, falling back to an intact older one."""

from __future__ import annotations

from index.manifest import Manifest, read_manifest
from index.store import VersionStore
from index.version import IndexVersion
from recommender.errors import CorruptVersionError
from recommender.settings import Settings


def load_current(settings: Settings) -> tuple[IndexVersion, str | None]:
    """The version to serve, and a warning when it is not the published one.

    A published version that is damaged or built for another model is refused; the newest
    intact older version is served instead, so what was serving keeps serving. Raises
    NoIndexError if nothing was published, CorruptVersionError if no version is usable.
    """
    store = VersionStore(settings.data_dir)
    published = store.current_id()
    try:
        return IndexVersion.load(store, published, expected_model=settings.model), None
    except CorruptVersionError as refusal:
        for older in reversed([v for v in store.version_ids() if v < published]):
            try:
                version = IndexVersion.load(store, older, expected_model=settings.model)
            except CorruptVersionError:
                continue
            return version, f"refused published version: {refusal}; serving {older} instead"
        raise


def current_manifest(settings: Settings) -> Manifest:
    """The published version's manifest, without loading or verifying its files."""
    return read_manifest(VersionStore(settings.data_dir).current_path())
