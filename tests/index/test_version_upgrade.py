"""Versions written by a release before BM25 was a signal still load, and serve as they were
built: their manifests name no BM25 weight and their directories hold no BM25 files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from index.serving.version_loader import load_current, load_recommender
from index.versions.manifest import MANIFEST_NAME, read_manifest
from index.versions.version_store import VersionStore
from recommender.ranking import RelatedQuery
from recommender.signals.bm25_share import Bm25Share
from tests.support.helpers import build_fake_index, synthetic_records


def _as_before_bm25(data_dir: Path) -> None:
    """Rewrite the current version as a release before BM25 wrote it."""
    path = VersionStore(data_dir).current_path()
    manifest = read_manifest(path)
    ranking = {k: v for k, v in manifest.ranking.items() if k != "bm25"}
    files = {k: v for k, v in manifest.files.items() if k not in Bm25Share.files}
    for name in Bm25Share.files:
        (path / name).unlink()
    older = dataclasses.replace(manifest, ranking=ranking, files=files)
    (path / MANIFEST_NAME).write_text(older.to_json(), encoding="utf-8")


def test_a_version_without_bm25_serves_its_own_lists_and_drafts(tmp_path: Path) -> None:
    records = synthetic_records()
    settings, _ = build_fake_index(tmp_path / "data", records)
    _as_before_bm25(settings.data_dir)
    version, warning = load_current(settings.index)
    bm25 = version.side.features["bm25"]
    assert (
        warning is None and bm25.nnz == 0 and bm25.shape == version.side.features["lexical"].shape
    )
    recommender, _ = load_recommender(settings.index)
    assert recommender.weights["bm25"] == 0.0
    slug = records[0]["slug"]
    row = version.rows[slug]
    served = [s.row for s in recommender.related(slug, RelatedQuery(limit=3))]
    assert served == version.neighbour_ids[row][:3].tolist()
    draft = recommender.related_to_draft(
        version.vectors[row], records[0]["body"], RelatedQuery(limit=3)
    )
    assert draft and all(np.isfinite(s.score) for s in draft)
    assert recommender.explain(row, served[0])["bm25"] == 0.0


def test_a_manifest_written_before_listings_were_recorded_loads(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data")
    path = VersionStore(settings.data_dir).current_path() / MANIFEST_NAME
    written = json.loads(path.read_text(encoding="utf-8"))
    del written["listings"]
    path.write_text(json.dumps(written), encoding="utf-8")
    assert read_manifest(path.parent).listings == []
    version, warning = load_current(settings.index)
    assert warning is None and version.manifest.listings == []
