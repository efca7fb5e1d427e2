"""The one place that picks an encoder: the fake, the ONNX backends or torch, from the settings.

Each backend imports its runtime (torch, onnxruntime) only when it first encodes.
"""

from __future__ import annotations

from recommender.encoding.encoder_protocol import FAKE_MODEL, Encoder
from recommender.encoding.encoder_settings import EncoderSettings
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.encoding.onnx_encoder import OnnxEncoder
from recommender.encoding.sentence_transformer_encoder import SentenceTransformerEncoder


def load_encoder(settings: EncoderSettings) -> Encoder:
    """The encoder `settings.model` names, run by `settings.backend` (slow for the real model:
    seconds to import torch or to export to ONNX on first use)."""
    if settings.model == FAKE_MODEL:
        return HashingEncoder()
    if settings.backend != "torch":
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
