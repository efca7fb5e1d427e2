"""The service's own face: `GET /` (what it is, where to go) and the API documentation pages,
served with their assets from installed packages so that they work with no internet."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, HTMLResponse, Response

from api.deps import Services, ServicesDep
from api.middleware.security_headers import CONTENT_SECURITY_POLICY
from api.responses import json_response
from api.templating import STATIC, render

router = APIRouter()

#: Swagger UI (Apache-2.0) and ReDoc (MIT), as the `fastapi-offline` package ships them.
_PACKAGED_ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSETS_PATH = "/docs/assets"
#: The only files /docs/assets serves: name -> (directory, media type).
DOCS_ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_PACKAGED_ASSETS, "text/javascript"),
    "swagger-ui.css": (_PACKAGED_ASSETS, "text/css"),
    "redoc.standalone.js": (_PACKAGED_ASSETS, "text/javascript"),
    "favicon.png": (_PACKAGED_ASSETS, "image/png"),
    "swagger-init.js": (STATIC, "text/javascript"),
}
#: The assets change only with the installed packages: readers' caches may keep them a day.
ASSETS_CACHE_CONTROL = "public, max-age=86400"


def about(request: Request, services: Services) -> dict[str, Any]:
    """What `GET /` says, as JSON (the HTML page shows the same)."""
    current = services.holder.current
    demo = services.settings.server.demo_site_url
    # Only while `make demo` serves a publisher's page beside this API.
    demo_links = (
        [{"title": "Widget demo", "href": demo, "what": "a publisher's page"}] if demo else []
    )
    return {
        "service": request.app.title,
        "summary": request.app.summary,
        "version": request.app.version,
        "index_version": current.version.id if current else None,
        "articles": len(current.cards) if current else None,
        "links": [
            {"title": "API documentation", "href": "/docs", "what": "Swagger UI, try it"},
            {"title": "API reference", "href": "/redoc", "what": "ReDoc"},
            {"title": "OpenAPI document", "href": "/openapi.json", "what": "JSON"},
            {"title": "Editors' desk", "href": "/editor", "what": "login"},
            {"title": "Widget script", "href": "/widget.js", "what": "for publishers' pages"},
            *demo_links,
            {"title": "Readiness", "href": "/readyz", "what": "JSON"},
        ],
    }


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@router.get("/", include_in_schema=False)
async def home(request: Request, services: ServicesDep) -> Response:
    body = about(request, services)
    if _wants_json(request):
        return json_response(body, headers={"Vary": "Accept"})
    return HTMLResponse(render("home.html", about=body), headers={"Vary": "Accept"})


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> Response:
    page = render(
        "api_docs_swagger.html",
        title=request.app.title,
        assets=ASSETS_PATH,
        openapi_url=request.app.openapi_url,
    )
    return HTMLResponse(page)


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> Response:
    # ReDoc (styled-components) writes its styles into <style> elements, which a nonce does not
    # cover: this page alone allows inline styles. Scripts stay same-origin files only, so its
    # search worker (a blob: script) is refused and ReDoc searches on the main thread.
    page = render(
        "api_docs_redoc.html",
        title=request.app.title,
        assets=ASSETS_PATH,
        openapi_url=request.app.openapi_url,
    )
    policy = CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    return HTMLResponse(page, headers={"Content-Security-Policy": policy})


@router.get(ASSETS_PATH + "/{name}", include_in_schema=False)
async def docs_asset(name: str) -> Response:
    found = DOCS_ASSETS.get(name)
    if found is None:
        return Response(status_code=404)
    directory, media_type = found
    return FileResponse(
        directory / name, media_type=media_type, headers={"Cache-Control": ASSETS_CACHE_CONTROL}
    )
