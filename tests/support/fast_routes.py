"""Two apps over one data directory, with and without a fast route, to compare their answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app
from recommender.settings import Settings


class RouteProbe:
    """Records which route answered each request (the router writes it into the scope)."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.seen.append(type(scope.get("route")).__name__)


def without_route(app: FastAPI, route: type[BaseRoute]) -> FastAPI:
    """`app` with its routes of type `route` removed."""
    app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, route)]
    return app


@contextmanager
def probed_apps(
    settings: Settings, route: type[BaseRoute]
) -> Iterator[tuple[TestClient, TestClient, list[str]]]:
    """(the real app, probed; the app without `route`; the routes that answered the first)."""
    seen: list[str] = []
    fast = create_app(settings)
    fast.add_middleware(RouteProbe, seen=seen)
    slow = without_route(create_app(settings), route)
    with TestClient(fast) as fast_client, TestClient(slow) as slow_client:
        yield fast_client, slow_client, seen
