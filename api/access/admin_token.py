"""Bearer-token authentication of the admin API (tokens compared in constant time, never logged)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ServicesDep

#: The admin token as the OpenAPI document declares it, on every route that needs it (/docs'
#: Authorize button). It never refuses anything: `require_admin` checks the token.
ADMIN_BEARER = HTTPBearer(
    scheme_name="adminToken",
    description="The admin token (RECOMMENDER_ADMIN_TOKEN), sent as `Authorization: Bearer …`.",
    auto_error=False,
)


def require_admin(
    request: Request,
    services: ServicesDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(ADMIN_BEARER)],
) -> None:
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
