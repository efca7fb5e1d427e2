"""Paths with an encoded slash (`%2F`) are refused before routing, as a plain ASGI middleware.

Servers decode `%2F` before routing, so `/v1/articles/volcano-0%2Frelated` would reach the
related list of `volcano-0`, and a slug that holds a slash would be read as two path segments.
No path parameter of this service may hold a slash (slugs never do): such a path is a 404.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.error_handlers import problem


def refuse_encoded_slashes(app: ASGIApp) -> ASGIApp:
    """`app`, answering 404 `not_found` to any path whose raw form holds `%2F`."""
    refusal = problem(404, "not_found", "encoded slashes (%2F) are not allowed in paths")

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and b"%2f" in scope.get("raw_path", b"").lower():
            await refusal(scope, receive, send)
            return
        await app(scope, receive, send)

    return guarded
