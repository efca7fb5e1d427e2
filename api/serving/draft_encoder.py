"""The embedding model of a worker, for drafts and live upserts: loaded in the background when
the worker starts (`RECOMMENDER_PRELOAD_MODEL`), else on first use.

It runs with the backend the served version was built with, which may differ from the
configured one (a version built before `RECOMMENDER_ENCODER_BACKEND` changed, or on a GPU):
the vectors of a draft must match the catalog's. Another model is refused."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal, cast, get_args

from recommender.encoding.encoder_factory import load_encoder
from recommender.encoding.encoder_protocol import Encoder
from recommender.encoding.encoder_settings import EncoderBackend, EncoderSettings
from recommender.errors import ModelError

log = logging.getLogger(__name__)
#: What the draft page shows: whether a draft would wait for the model.
DraftReadiness = Literal["ready", "loading", "not loaded", "failed"]


class DraftEncoder:
    """The embedding model, loaded on first use: the lookup path never needs it."""

    def __init__(self, settings: EncoderSettings) -> None:
        self._settings = settings
        self._encoder: Encoder | None = None
        self._backend: str = settings.backend
        """The backend `_encoder` runs with."""
        self._lock = asyncio.Lock()
        self._preloading: asyncio.Task[None] | None = None
        self._failed = False

    def state(self) -> DraftReadiness:
        """ "ready" once loaded; "loading" while the background load runs."""
        if self._encoder is not None:
            return "ready"
        if self._failed:
            return "failed"
        return "loading" if self._lock.locked() else "not loaded"

    def preload(self) -> None:
        """Start loading the model in the background (when the settings ask for it)."""
        if self._settings.preload and self._preloading is None:
            self._preloading = asyncio.create_task(self._load())

    async def close(self) -> None:
        """Stop waiting for a background load (the loading thread finishes by itself)."""
        if self._preloading is not None:
            self._preloading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._preloading

    async def _load(self) -> None:
        try:
            async with self._lock:
                if self._encoder is None:
                    self._encoder = await asyncio.to_thread(load_encoder, self._settings)
        except Exception as exc:  # the first draft tries again and reports the error
            self._failed = True
            log.warning("the embedding model did not load in the background: %s", exc)

    async def get(self, expected_model_id: str, backend: str) -> Encoder:
        """The encoder whose vectors are `expected_model_id`'s, run by `backend` (the served
        version's; ONNX ones on cpu); ModelError when the configured model cannot give them."""
        if backend not in get_args(EncoderBackend):
            raise ModelError(f"the index was built with an unknown backend {backend!r}; reindex")
        async with self._lock:
            if self._encoder is None or self._backend != backend:
                device = self._settings.device if backend == "torch" else "cpu"
                settings = self._settings.model_copy(
                    update={"configured_backend": cast(EncoderBackend, backend), "device": device}
                )
                self._encoder = await asyncio.to_thread(load_encoder, settings)
                self._backend = backend
                self._failed = False
        if self._encoder.model_id != expected_model_id:
            raise ModelError(
                f"the index was built with {expected_model_id}, but the configured model is "
                f"{self._encoder.model_id}; reindex or change RECOMMENDER_MODEL"
            )
        return self._encoder
