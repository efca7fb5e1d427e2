"""The ray engine on a real, bounded local Ray instance (2 CPUs): the same vectors as the local
engine, an actor killed mid-run, an unreachable cluster, and a reindex through the CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.versions.ray_encoding import RayEncoder, load_reindex_encoder
from index.versions.reindex_pipeline import reindex
from recommender.encoding.encoder_factory import load_encoder
from recommender.errors import ModelError
from recommender.settings import Settings
from tests.support.helpers import fake_settings, synthetic_records, write_jsonl
from tests.support.local_ray import require_ray

ray = require_ray()

TEXTS = [f"{r['title']} {r.get('body', '')}" for r in synthetic_records(per_topic=60)]


def test_ray_vectors_equal_local_ones(local_ray: None, tmp_path: Path) -> None:
    settings = fake_settings(tmp_path).encoder
    encoder = RayEncoder(settings, address=None)
    try:
        assert len(TEXTS) > 300 and len(encoder.actor_names) == 2
        expected = load_encoder(settings).encode(TEXTS)
        assert encoder.model_id == load_encoder(settings).model_id
        np.testing.assert_allclose(encoder.encode(TEXTS), expected, atol=1e-5)
    finally:
        encoder.close()


def test_an_actor_killed_mid_run_is_restarted_and_the_run_completes(
    local_ray: None, tmp_path: Path
) -> None:
    settings = fake_settings(tmp_path).encoder
    encoder = RayEncoder(settings, address=None)
    try:
        half = len(TEXTS) // 2
        first = encoder.encode(TEXTS[:half])
        victim: Any = ray.get_actor(encoder.actor_names[0])  # an actor handle, untyped in Ray
        pid = ray.get(victim.pid.remote())
        os.kill(pid, signal.SIGKILL)  # the process, as the OOM killer or a lost node would
        second = encoder.encode(TEXTS[half:])
        assert ray.get(victim.pid.remote()) != pid  # a new process took over
        expected = load_encoder(settings).encode(TEXTS)
        np.testing.assert_allclose(np.vstack([first, second]), expected, atol=1e-5)
    finally:
        encoder.close()


def test_a_reindex_on_ray_publishes_the_local_engines_vectors(
    local_ray: None, tmp_path: Path
) -> None:
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records(per_topic=40))
    local = fake_settings(tmp_path / "local")
    on_ray = fake_settings(tmp_path / "ray", encode_engine="ray")
    expected = reindex(local.index, [feed], load_encoder(local.encoder))
    encoder = load_reindex_encoder(on_ray.index, on_ray.encoder)
    assert isinstance(encoder, RayEncoder)
    try:
        summary = reindex(on_ray.index, [feed], encoder)
    finally:
        encoder.close()
    assert summary.published and summary.embedded == expected.embedded == summary.indexed
    from index.serving.version_loader import load_current

    vectors = [load_current(s.index)[0].vectors for s in (local, on_ray)]
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)


def test_an_unreachable_cluster_is_one_line_naming_the_address(tmp_path: Path) -> None:
    address = closed_address()
    with pytest.raises(ModelError, match=f"cannot reach the Ray cluster at {address}"):
        RayEncoder(fake_settings(tmp_path).encoder, address=address)


def test_the_cli_exits_5_naming_an_unreachable_address(tmp_path: Path) -> None:
    address = closed_address()
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records())
    completed = subprocess.run(
        [sys.executable, "-m", "console", "reindex", "--source", str(feed), "--engine", "ray",
         "--data-dir", str(tmp_path / "data")],
        env={**os.environ, "RECOMMENDER_MODEL": "fake-hashing",
             "RECOMMENDER_RAY_ADDRESS": f"ray://{address}"},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 5
    [error] = [line for line in completed.stderr.splitlines() if "error:" in line]
    assert error.startswith(f"recommender: error: cannot reach the Ray cluster at ray://{address}")
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "data" / "CURRENT").exists()


def closed_address() -> str:
    """A HOST:PORT where nothing listens (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def test_the_engine_setting_reaches_the_index_group_not_the_encoders(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, encode_engine="ray", ray_address="auto")
    assert settings.index.encode_engine == "ray" and settings.index.ray_address == "auto"
    assert not hasattr(settings.encoder, "ray_address")


@pytest.mark.model
def test_the_real_model_on_ray_gives_the_local_vectors(local_ray: None, tmp_path: Path) -> None:
    # torch: int8 quantises activations per batch, so its vectors depend on the batching
    settings = Settings(data_dir=tmp_path, encoder_backend="torch").encoder
    encoder = RayEncoder(
        settings, address=None, actors=1
    )  # one model load: bounded time and memory
    try:
        vectors = encoder.encode(TEXTS[:20])
    finally:
        encoder.close()
    assert encoder.model_id == load_encoder(settings).model_id
    np.testing.assert_allclose(vectors, load_encoder(settings).encode(TEXTS[:20]), atol=1e-5)
