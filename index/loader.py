"""Loading the published version for serving."""

from __future__ import annotations

from index.manifest import Manifest, read_manifest
from index.store import VersionStore
from index.version import IndexVersion
from recommender.settings import Settings


def load_current(settings: Settings) -> IndexVersion:
    """The verified current version; raises NoIndexError or CorruptVersionError."""
    store = VersionStore(settings.data_dir)
    return IndexVersion.load(store, store.current_id(), expected_model=settings.model)


def current_manifest(settings: Settings) -> Manifest:
    """The current version's manifest, without loading or verifying its files."""
    return read_manifest(VersionStore(settings.data_dir).current_path())
