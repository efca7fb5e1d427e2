"""Bearer-token authentication of the admin API (tokens compared in constant time, never logged)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from api.deps import ServicesDep


def require_admin(request: Request, services: ServicesDep) -> None:
    """401 without a bearer token, 403 with a wrong one, 503 when no token is configured."""
    configured = services.settings.editor.admin_token
    if configured is None:
        raise HTTPException(503, "the admin API is disabled: set RECOMMENDER_ADMIN_TOKEN")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            401, "an admin bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(token.strip().encode(), configured.get_secret_value().encode()):
        raise HTTPException(403, "the bearer token is not valid")


AdminDep = Annotated[None, Depends(require_admin)]
