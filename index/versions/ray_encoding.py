"""The embedding stage of a reindex on Ray (`--engine ray`): ray is touched only here.

`RayEncoder` is an `Encoder`: the reindex pipeline hands it exactly the texts it would encode
locally (those missing from the embedding cache, a chunk at a time) and gets their vectors back
in order, so the cache, the FAISS build, publishing, the lock, the summary line and the progress
bar are the same as with the local engine. Each call is split into batches spread over Ray actors
that each load the model once; an actor whose process or node dies is restarted and its batches
retried by Ray (`max_restarts`, `max_task_retries`). When the retries run out the call raises
ModelError, the run stops before building anything, and nothing is published.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from recommender.encoding.encoder_factory import load_encoder
from recommender.encoding.encoder_protocol import Encoder, Vectors
from recommender.encoding.encoder_settings import EncoderSettings
from recommender.errors import ModelError
from recommender.settings import IndexSettings

#: Restarts of one actor, and retries of one batch, before the run fails.
RETRIES = 3
_CONNECT_TIMEOUT_SECONDS = 5.0


class _EmbeddingActor:
    """One model copy on a Ray worker."""

    def __init__(self, settings: EncoderSettings) -> None:
        self._encoder = load_encoder(settings)

    def encode(self, texts: list[str]) -> Vectors:
        return self._encoder.encode(texts)

    def dimension(self) -> int:
        return self._encoder.dimension

    def pid(self) -> int:
        import os

        return os.getpid()


def _check_reachable(address: str) -> None:
    """Fail at once, naming the address, when nothing listens there (Ray itself waits minutes)."""
    if address == "auto":
        return  # the local node's own address file: ray.init says quickly when it is missing
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise ModelError(f"Ray address {address!r} is not 'auto', HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_SECONDS).close()
    except OSError as exc:
        raise ModelError(f"cannot reach the Ray cluster at {address} ({exc})") from None


def connect(address: str | None, *, num_cpus: int | None = None) -> Any:
    """The `ray` module, connected: to `address`, or to a new local instance when it is None.

    A driver already connected (a test's bounded instance) stays connected where it is.
    """
    import ray

    if address is not None:
        _check_reachable(address)
    if ray.is_initialized():
        return ray
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
        )
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError: all "cannot connect"
        where = address or "a new local instance"
        raise ModelError(f"cannot start or join Ray at {where}: {exc}") from exc
    return ray


class RayEncoder:
    """Batches encoded by Ray actors, one model copy each; results in input order.

    `actors` defaults to one per CPU of the cluster (one per GPU with a cuda device), each
    with one torch thread unless `settings.threads` says otherwise.
    """

    def __init__(
        self, settings: EncoderSettings, *, address: str | None, actors: int | None = None
    ) -> None:
        self._ray = connect(address)
        gpu = settings.device.startswith("cuda")
        resources = self._ray.cluster_resources()
        count = actors or max(1, int(resources.get("GPU" if gpu else "CPU", 1)))
        local = settings.model_copy(update={"processes": 0, "threads": settings.threads or 1})
        self._model_id = load_encoder(local).model_id  # no model is loaded to know it
        self._batch_size = settings.batch_size
        remote = self._ray.remote(
            num_cpus=0 if gpu else 1,
            num_gpus=1 if gpu else 0,
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
        )(_EmbeddingActor)
        run = uuid.uuid4().hex[:8]
        self.actor_names = [f"recommender-encoder-{run}-{n}" for n in range(count)]
        self._actors = [remote.options(name=name).remote(local) for name in self.actor_names]
        self._dimension: int | None = None

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self._get(self._actors[0].dimension.remote()))
        return self._dimension

    def _get(self, refs: Any) -> Any:
        try:
            return self._ray.get(refs)
        except self._ray.exceptions.RayError as exc:
            raise ModelError(f"embedding on Ray failed after {RETRIES} retries: {exc}") from exc

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batches = [
            list(texts[start : start + self._batch_size])
            for start in range(0, len(texts), self._batch_size)
        ]
        refs = [
            self._actors[number % len(self._actors)].encode.remote(batch)
            for number, batch in enumerate(batches)
        ]
        return np.ascontiguousarray(np.concatenate(self._get(refs)), dtype=np.float32)

    def close(self) -> None:
        """Stop the actors (a local Ray instance stops with this process anyway)."""
        for actor in self._actors:
            self._ray.kill(actor)


def load_reindex_encoder(index: IndexSettings, encoder: EncoderSettings) -> Encoder:
    """The encoder of a reindex: `load_encoder`'s, run here, or on Ray actors with the ray
    engine (connecting may start a local Ray instance)."""
    if index.encode_engine == "ray":
        return RayEncoder(encoder, address=index.ray_address)
    return load_encoder(encoder)
