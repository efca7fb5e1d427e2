"""The embedding model of a worker, for drafts and live upserts: loaded on first use."""

from __future__ import annotations

import asyncio

from recommender.embedding import Encoder, load_encoder
from recommender.errors import ModelError
from recommender.settings import EncoderSettings


class DraftEncoder:
    """The embedding model, loaded on first use: the lookup path never needs it."""

    def __init__(self, settings: EncoderSettings) -> None:
        self._settings = settings
        self._encoder: Encoder | None = None
        self._lock = asyncio.Lock()

    async def get(self, expected_model_id: str) -> Encoder:
        async with self._lock:
            if self._encoder is None:
                self._encoder = await asyncio.to_thread(load_encoder, self._settings)
        if self._encoder.model_id != expected_model_id:
            raise ModelError(
                f"the index was built with {expected_model_id}, but the configured model is "
                f"{self._encoder.model_id}; reindex or change RECOMMENDER_MODEL "
                "(or RECOMMENDER_ENCODER_BACKEND)"
            )
        return self._encoder
