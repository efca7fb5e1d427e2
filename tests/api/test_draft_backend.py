"""The API serves drafts and live upserts only with the backend a version was built with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from index.versions.reindex_pipeline import reindex
from recommender.embedding import HashingEncoder, Vectors, load_encoder
from recommender.settings import Settings
from tests.support.helpers import synthetic_records, write_jsonl


class _TorchIdentified:
    """Hashing vectors under the real torch model's id: a version 'built with torch' in ms."""

    def __init__(self, model_id: str) -> None:
        self._fake = HashingEncoder(384)
        self.model_id = model_id
        self.dimension = 384
        self.batch_size = 16

    def encode(self, texts: Sequence[str]) -> Vectors:
        return self._fake.encode(texts)


def test_the_api_refuses_drafts_for_a_version_built_with_another_backend(tmp_path: Path) -> None:
    torch_settings = Settings(data_dir=tmp_path / "data")
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records())
    encoder = _TorchIdentified(load_encoder(torch_settings.encoder).model_id)
    reindex(torch_settings.index, [feed], encoder)
    served = Settings(data_dir=tmp_path / "data", encoder_backend="onnx-int8")
    with TestClient(create_app(served)) as client:
        response = client.post("/v1/related", json={"title": "Volcano", "body": "lava ash"})
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "model_unavailable" and "+onnx-int8" in body["detail"]
    assert not (tmp_path / "data" / "encoders").exists()  # refused before any export
