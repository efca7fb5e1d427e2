"""The ONNX backends: exported offline from the packaged weights, cached with a checksum, and
close enough to torch (fp32: the same vectors; int8: cosine ≥ 0.98 per text)."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from recommender.encoding import onnx_export
from recommender.encoding.encoder_factory import load_encoder
from recommender.encoding.encoder_protocol import PACKAGED_MODEL
from recommender.encoding.model_files import resolve_model_path, weights_fingerprint
from recommender.encoding.onnx_encoder import OnnxEncoder
from recommender.encoding.onnx_export import CHECKSUM_FILE, MODEL_FILE, exported_model
from recommender.encoding.sentence_transformer_encoder import SentenceTransformerEncoder
from recommender.errors import ModelError
from recommender.settings import Settings

TEXTS = [
    "Volcano erupts on the island, thousands evacuated as ash covers the villages",
    "Lava flows reach the coast after the eruption forced an evacuation",
    "The central bank raises interest rates to fight inflation " * 40,  # past 128 tokens
    "Bitcoin exchange halts withdrawals as the price falls",
    "Short",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prove nothing is fetched from a model hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def export_dir() -> Path:
    """The run's shared export cache (tests/conftest.py), so that an export another test made is
    not made again; a test that exports or corrupts on purpose does it in a directory of its own."""
    return Path(os.environ["RECOMMENDER_ENCODER_CACHE_DIR"])


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return SentenceTransformerEncoder(PACKAGED_MODEL).encode(TEXTS)


def onnx(backend: str, export_dir: Path) -> OnnxEncoder:
    return OnnxEncoder(PACKAGED_MODEL, backend=backend, export_dir=export_dir)


def _fingerprint() -> str:
    return weights_fingerprint(resolve_model_path(PACKAGED_MODEL), 256)


@pytest.mark.model
def test_fp32_onnx_gives_the_torch_vectors(export_dir: Path, torch_vectors: np.ndarray) -> None:
    vectors = onnx("onnx", export_dir).encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == torch_vectors.shape
    np.testing.assert_allclose(vectors, torch_vectors, atol=1e-5)


@pytest.mark.model
def test_int8_vectors_stay_close_to_torch(export_dir: Path, torch_vectors: np.ndarray) -> None:
    vectors = onnx("onnx-int8", export_dir).encode(TEXTS)
    cosines = (vectors * torch_vectors).sum(axis=1)
    # The one-word text moves most (0.979 with onnxruntime 1.32; whole articles stay >= 0.99).
    assert cosines.mean() >= 0.985 and cosines.min() >= 0.975
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.model
@pytest.mark.parametrize(("backend", "least_cosine"), [("onnx", 0.99999), ("onnx-int8", 0.98)])
def test_order_and_batching_barely_change_vectors(
    export_dir: Path, backend: str, least_cosine: float
) -> None:
    """fp32 is batch-independent; int8 quantises activations per batch, so a text's vector
    moves slightly with its batch companions (cosine ≥ 0.98)."""
    encoder = OnnxEncoder(PACKAGED_MODEL, backend=backend, export_dir=export_dir, batch_size=2)
    together = encoder.encode(TEXTS)
    alone = np.stack([encoder.encode([text])[0] for text in reversed(TEXTS)])[::-1]
    assert (together * alone).sum(axis=1).min() >= least_cosine


def test_each_backend_has_its_own_model_id(tmp_path: Path) -> None:
    ids = {
        backend: load_encoder(Settings(data_dir=tmp_path, encoder_backend=backend).encoder).model_id
        for backend in ("torch", "onnx", "onnx-int8")
    }
    assert ids["onnx"] == f"{ids['torch']}+onnx"
    assert ids["onnx-int8"] == f"{ids['torch']}+onnx-int8"
    assert not list(tmp_path.iterdir())  # an id is known without exporting anything


def test_exports_live_in_the_data_dir_unless_a_shared_cache_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECOMMENDER_ENCODER_CACHE_DIR", raising=False)
    assert Settings(data_dir=tmp_path).encoder.export_dir == tmp_path / "encoders"
    monkeypatch.setenv("RECOMMENDER_ENCODER_CACHE_DIR", str(tmp_path / "shared"))
    assert Settings(data_dir=tmp_path).encoder.export_dir == tmp_path / "shared"


def test_onnx_backends_refuse_a_gpu_device(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cpu only"):
        load_encoder(Settings(data_dir=tmp_path, encoder_backend="onnx", device="cuda").encoder)


def test_the_default_backend_is_int8_on_cpu_and_torch_on_a_gpu(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).encoder.backend == "onnx-int8"
    assert Settings(data_dir=tmp_path, device="cuda").encoder.backend == "torch"
    assert Settings(data_dir=tmp_path, device="cuda").index.backend == "torch"
    chosen = Settings(data_dir=tmp_path, device="cuda", encoder_backend="onnx")
    assert chosen.encoder.backend == "onnx"  # a configured backend is kept (and refused later)


@pytest.mark.model
def test_the_export_is_cached_reused_and_redone_when_corrupt(
    export_dir: Path, tmp_path: Path
) -> None:
    """The cache is laid out and verified by content: a copy of the shared export (corrupted
    here, not where other tests read it) is reused as it is, and exported again once damaged."""
    shared = exported_model(
        resolve_model_path(PACKAGED_MODEL), _fingerprint(), "onnx-int8", export_dir
    )
    assert shared.name == MODEL_FILE and shared.parent.parent == export_dir
    own_dir = tmp_path / "encoders"
    shutil.copytree(shared.parent, own_dir / shared.parent.name)
    path = own_dir / shared.parent.name / MODEL_FILE
    checksum = json.loads((path.parent / CHECKSUM_FILE).read_text())
    inode, size = path.stat().st_ino, path.stat().st_size
    again = onnx("onnx-int8", own_dir)
    again.encode(TEXTS[:1])
    assert path.stat().st_ino == inode  # reused, not exported again

    with path.open("ab") as handle:
        handle.write(b"garbage")
    fresh = exported_model(resolve_model_path(PACKAGED_MODEL), _fingerprint(), "onnx-int8", own_dir)
    # Exported again: whole, without the garbage (a new file may reuse the freed inode number).
    assert fresh == path and fresh.stat().st_size == size
    assert json.loads((fresh.parent / CHECKSUM_FILE).read_text())["backend"] == checksum["backend"]
    assert not [p for p in own_dir.iterdir() if p.name.startswith(".")]  # nothing left aside


def _export_in_a_process(export_dir: str, builds_dir: str) -> str:
    """Export in a fresh process; each export it really builds leaves a file in `builds_dir`."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    build = onnx_export._build

    def counted_build(model_path: Path, backend: str, directory: Path) -> None:
        (Path(builds_dir) / str(os.getpid())).touch()
        build(model_path, backend, directory)

    onnx_export._build = counted_build
    fingerprint = _fingerprint()
    path = exported_model(resolve_model_path(PACKAGED_MODEL), fingerprint, "onnx", Path(export_dir))
    return str(path)


@pytest.mark.model
def test_processes_exporting_at_once_all_get_one_whole_model_exported_once(
    tmp_path: Path,
) -> None:
    """Two processes ask for the same missing export at once: one builds it while the other
    waits on the lock file, then finds it."""
    exports, builds = tmp_path / "encoders", tmp_path / "builds"
    builds.mkdir()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        paths = set(pool.map(_export_in_a_process, [str(exports)] * 2, [str(builds)] * 2))
    assert len(paths) == 1
    path = Path(paths.pop())
    assert len(list(builds.iterdir())) == 1
    encoder = onnx("onnx", exports)
    assert encoder.encode(TEXTS[:1]).shape == (1, 384)
    # The export and its lock file; no staging left.
    assert sorted(p.name for p in exports.iterdir()) == [
        path.parent.name,
        f"{path.parent.name}.lock",
    ]
