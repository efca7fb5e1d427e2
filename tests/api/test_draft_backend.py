"""Drafts and live upserts are embedded with the backend the served version was built with
(whatever the worker is configured with), and never with another model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from index.versions.reindex_pipeline import reindex
from recommender.encoding.encoder_factory import load_encoder
from recommender.encoding.encoder_protocol import Vectors
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.settings import Settings
from tests.support.helpers import synthetic_records, write_jsonl


class _Identified:
    """Hashing vectors under a given model id: a version 'built with' that model in ms."""

    def __init__(self, model_id: str) -> None:
        self._fake = HashingEncoder(384)
        self.model_id = model_id
        self.dimension = 384
        self.batch_size = 16

    def encode(self, texts: Sequence[str]) -> Vectors:
        return self._fake.encode(texts)


def _build_with(data_dir: Path, feed: Path, model_id: str) -> None:
    """Publish a version whose manifest says torch built it, with the vectors of `model_id`."""
    reindex(
        Settings(data_dir=data_dir, encoder_backend="torch").index, [feed], _Identified(model_id)
    )


@pytest.mark.model
def test_an_int8_worker_embeds_drafts_for_a_torch_version_with_torch(tmp_path: Path) -> None:
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records())
    torch_id = load_encoder(Settings(data_dir=tmp_path, encoder_backend="torch").encoder).model_id
    _build_with(tmp_path / "data", feed, torch_id)
    served = Settings(
        data_dir=tmp_path / "data",
        encoder_backend="onnx-int8",
        encoder_cache_dir=tmp_path / "encoders",
        preload_model=False,
    )
    with TestClient(create_app(served)) as client:
        response = client.post("/v1/related", json={"title": "Volcano", "body": "lava ash"})
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == 5
    assert not (tmp_path / "encoders").exists()  # torch ran: nothing was exported


def test_the_api_refuses_drafts_for_a_version_built_with_another_model(tmp_path: Path) -> None:
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records())
    _build_with(tmp_path / "data", feed, "another-model@0123456789ab/seq256")
    served = Settings(
        data_dir=tmp_path / "data", encoder_cache_dir=tmp_path / "encoders", preload_model=False
    )
    with TestClient(create_app(served)) as client:
        response = client.post("/v1/related", json={"title": "Volcano", "body": "lava ash"})
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "model_unavailable"
    assert "another-model@0123456789ab/seq256" in body["detail"]
    assert "all-MiniLM-L6-v2@" in body["detail"]
    assert not (tmp_path / "encoders").exists()  # refused before any export
