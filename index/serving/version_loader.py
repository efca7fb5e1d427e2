"""Loading the published version for serving, falling back to an intact older one."""

from __future__ import annotations

from index.index_errors import CorruptVersionError, VersionNotFound
from index.serving.live_overlay import LiveOverlay
from index.serving.recommender_engine import Recommender
from index.state.live_store import LiveStore
from index.state.state_stores import StateStores, open_stores
from index.versions.index_version import IndexVersion
from index.versions.manifest import Manifest, read_manifest
from index.versions.version_store import VersionStore
from recommender.ranking import FusionWeights
from recommender.settings import IndexSettings
from recommender.signals.registry import fusion_weights


def load_current(settings: IndexSettings) -> tuple[IndexVersion, str | None]:
    """The version to serve, and a warning when it is not the published one.

    A published version that is damaged, missing or built for another model is refused; the newest
    intact older version is served instead, so what was serving keeps serving. Raises
    NoIndexError if nothing was published, CorruptVersionError if no version is usable.
    """
    store = VersionStore(settings.data_dir)
    published = store.current_id()
    try:
        return IndexVersion.load(store, published, expected_model=settings.model), None
    except (CorruptVersionError, VersionNotFound) as refusal:
        for older in reversed([v for v in store.version_ids() if v < published]):
            try:
                version = IndexVersion.load(store, older, expected_model=settings.model)
            except CorruptVersionError:
                continue
            return version, f"refused published version: {refusal}; serving {older} instead"
        raise


def served_weights(version: IndexVersion, settings: IndexSettings) -> FusionWeights | None:
    """The fusion parameters `version` is served with when the settings applied at serving
    (`RankingSettings.served`) differ from those it was built with; None when they do not (its
    precomputed lists are served as they are)."""
    served = settings.ranking.served
    if all(version.weights[name] == value for name, value in served.items()):
        return None
    return fusion_weights({**version.weights, **served})


def with_live_changes(
    version: IndexVersion,
    live: LiveStore,
    settings: IndexSettings,
    previous: LiveOverlay | None = None,
) -> Recommender:
    """A recommender over `version` with the live upserts and retractions applied (preparing only
    the changes `previous` lacks)."""
    overlay = LiveOverlay.read(version, live, previous)
    return Recommender(version, settings.policy, overlay, weights=served_weights(version, settings))


def as_served(version: IndexVersion, stores: StateStores, settings: IndexSettings) -> Recommender:
    """A recommender over `version` as the API serves it: live changes, then editors' pins and
    blocks."""
    overrides = stores.curation.snapshot()
    return with_live_changes(version, stores.live, settings).with_overrides(overrides)


def load_recommender(settings: IndexSettings) -> tuple[Recommender, str | None]:
    """What the API would serve right now (the CLI's view), and any warning."""
    version, warning = load_current(settings)
    stores = open_stores(settings)
    try:
        return as_served(version, stores, settings), warning
    finally:
        stores.close()


def current_manifest(settings: IndexSettings) -> Manifest:
    """The published version's manifest, without loading or verifying its files."""
    return read_manifest(VersionStore(settings.data_dir).current_path())
