"""The real model run by torch: sentence-transformers is touched only here.

Nothing is ever downloaded: weights are found by `recommender.encoding.model_files` (the packaged
all-MiniLM-L6-v2, or a local directory), and the Hugging Face hub is forced offline.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from recommender.encoding.encoder_protocol import Vectors, normalise_rows
from recommender.encoding.model_files import model_id_of, resolve_model_path
from recommender.errors import ModelError


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
