"""Encoder backends and index versions: vectors of two backends never meet in one version."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.versions.manifest import Manifest, read_manifest
from index.versions.reindex_pipeline import ReindexSummary, reindex
from index.versions.version_store import VersionStore
from recommender.encoding.encoder_factory import load_encoder
from recommender.settings import Settings
from tests.support.helpers import synthetic_records, write_jsonl


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.model
def test_a_backend_change_reembeds_everything_and_the_manifest_records_it(
    tmp_path: Path,
) -> None:
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records(per_topic=2))
    runs: dict[str, list[tuple[ReindexSummary, Manifest]]] = {}
    for backend in ("torch", "onnx-int8", "torch"):
        settings = Settings(data_dir=tmp_path / "data", encoder_backend=backend)
        summary = reindex(settings.index, [feed], load_encoder(settings.encoder))
        manifest = read_manifest(VersionStore(settings.data_dir).current_path())
        runs.setdefault(backend, []).append((summary, manifest))
    _, (torch_again, torch_manifest) = runs["torch"]
    [(int8, int8_manifest)] = runs["onnx-int8"]
    assert int8.embedded == int8.indexed and int8.reused == 0  # no torch vector reused
    assert int8_manifest.backend == "onnx-int8" and int8_manifest.model_id.endswith("+onnx-int8")
    assert torch_again.embedded == 0 and torch_again.published  # torch's own cache, still there
    assert torch_manifest.backend == "torch" and "+" not in torch_manifest.model_id
