"""Liveness, readiness and metrics for orchestrators and monitoring."""

from __future__ import annotations

import os

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import ServicesDep
from api.responses import json_response
from api.schemas import Readiness
from api.serving.feedback_tokens import shared_key_warning
from index.state.disk_space import low_space_warning

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> Response:
    """The process is alive; `worker` is its process id (which worker answered)."""
    return json_response({"status": "ok", "worker": os.getpid()})


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(services: ServicesDep) -> Response:
    """Ready when an index is loaded; reports the cache and the database as ok or degraded,
    and warnings (low disk space among them) that do not stop serving."""
    holder = services.holder
    current = holder.current
    risk = await services.events.eviction_risk()
    index = services.settings.index
    disk = low_space_warning(index.data_dir, index.disk_warn_mb)
    key = shared_key_warning(services.settings.feedback, index)
    database = "degraded" if holder.database_degraded else "ok"
    body = {
        "status": "ready" if current else "not_ready",
        "index_version": current.version.id if current else None,
        "cache": services.cache.status(),
        "database": database if holder.stores.shared else "local",
        "detail": None if current else services.holder.problem,
        "warnings": [warning for warning in (risk, disk, key) if warning],
    }
    return json_response(body, 200 if current else 503)


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics of this worker."""
    return Response(
        services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
