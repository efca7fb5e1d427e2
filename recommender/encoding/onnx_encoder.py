"""The model run by ONNX Runtime (`onnx`, `onnx-int8` backends): onnxruntime is touched only here.

Imports in a fraction of a second (no torch once the export is cached) and, quantised, embeds
faster on CPU than torch. Tokenisation uses the model's own `tokenizer.json`, with truncation
set to `max_seq_length` and padding to the longest text of each batch (the packaged file fixes
both at 128).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recommender.encoding.encoder_protocol import Vectors, longest_first, normalise_rows
from recommender.encoding.model_files import model_id_of, resolve_model_path, weights_fingerprint
from recommender.encoding.onnx_export import exported_model
from recommender.errors import ModelError


class OnnxEncoder:
    """The same weights as `SentenceTransformerEncoder`, exported to ONNX (CPU only).

    The export and the session are made on first use.
    """

    def __init__(
        self,
        model: str,
        *,
        backend: str,
        export_dir: Path,
        device: str = "cpu",
        batch_size: int = 16,
        max_seq_length: int = 256,
        threads: int = 0,
    ) -> None:
        if device != "cpu":
            raise ModelError(
                f"the {backend} backend runs on cpu only, not {device!r}; use "
                "RECOMMENDER_ENCODER_BACKEND=torch for a GPU"
            )
        self._path = resolve_model_path(model)
        self._backend = backend
        self._export_dir = export_dir
        self._batch_size = batch_size
        self._max_seq_length = max_seq_length
        self._threads = threads
        self._model_id = model_id_of(model, self._path, max_seq_length, backend)
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def dimension(self) -> int:
        return int(self._loaded().get_outputs()[0].shape[1])

    def _loaded(self) -> Any:
        if self._session is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import onnxruntime
            from tokenizers import Tokenizer

            fingerprint = weights_fingerprint(self._path, self._max_seq_length)
            path = exported_model(self._path, fingerprint, self._backend, self._export_dir)
            tokenizer = Tokenizer.from_file(str(self._path / "tokenizer.json"))
            padding = tokenizer.padding or {}
            tokenizer.enable_truncation(max_length=self._max_seq_length)
            tokenizer.enable_padding(
                pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]")
            )
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            options.intra_op_num_threads = self._threads
            try:
                session = onnxruntime.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own untyped kinds
                raise ModelError(f"cannot load the ONNX model {path}: {exc}") from exc
            self._tokenizer = tokenizer
            self._session = session
        return self._session

    def encode(self, texts: Sequence[str]) -> Vectors:
        session = self._loaded()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = longest_first(texts)
        out: list[Any] = []
        for start in range(0, len(order), self._batch_size):
            batch = self._tokenizer.encode_batch(
                [texts[row] for row in order[start : start + self._batch_size]]
            )
            feed = {
                "input_ids": np.array([item.ids for item in batch], dtype=np.int64),
                "attention_mask": np.array([item.attention_mask for item in batch], dtype=np.int64),
                "token_type_ids": np.array([item.type_ids for item in batch], dtype=np.int64),
            }
            out.append(session.run(None, feed)[0])
        vectors = np.empty((len(texts), out[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(out)
        return normalise_rows(vectors)
