"""The "You Might Also Like" box for publishers' pages, from one template.

`GET /v1/articles/{slug}/related.html` is the related list as an HTML fragment (for ESI/SSI
includes and search engines), answered like the JSON list: same ranking, result cache (its own
keys), ETag, Cache-Control and 304s. `GET /widget.js` is the drop-in script that fetches that
fragment into `data-related-slug` boxes and reports impressions and clicks.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, Response

from api.deps import ServicesDep
from api.error_handlers import error_response
from api.routes.parameters import ERRORS, ExploreQuery, PlacementQuery, SlugPath, SlugValue
from api.serving.related_answers import (
    Representation,
    etag_for,
    not_modified,
    related_response,
)
from api.templating import STATIC, render, safe_href
from recommender.articles import DEFAULT_PLACEMENT
from recommender.ranking import RelatedQuery

router = APIRouter(tags=["widget"])

DEFAULT_HEADING = "You Might Also Like"
#: "list": rows with a small thumbnail when there is an image; "cards": a grid of image cards.
Layout = Literal["list", "cards"]
#: Readers' caches keep the script a day and may serve it a week longer while revalidating.
WIDGET_CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"
#: The fragment's errors are the usual JSON, not HTML: declared so in the OpenAPI document.
FRAGMENT_ERRORS: dict[int | str, dict[str, Any]] = {
    status: error_response("The error JSON.") for status in ERRORS
}


def _display_date(published_at: str | None) -> str | None:
    if published_at is None:
        return None
    moment = datetime.fromisoformat(published_at)
    return f"{moment.day} {moment:%b %Y}"


def _shown(item: dict[str, Any], slot: int | None) -> dict[str, Any]:
    """An item of the list (or a reserve: no slot) as the fragment's template shows it."""
    return {
        **item,
        "slot": slot,
        "href": safe_href(item["url"]),
        "image": safe_href(item.get("image")),
        "date": _display_date(item["published_at"]),
    }


def render_fragment(body: dict[str, Any], *, heading: str, layout: Layout = "list") -> bytes:
    """A related list `body` (as `Recommender.body` builds it) as `related_fragment.html`;
    while an experiment runs, the holdout's list with the other arms' in a template."""
    others = [
        render_fragment({"slug": body["slug"], **arm}, heading=heading, layout=layout)
        for arm in body.get("arms", ())[1:]
    ]
    html = render(
        "related_fragment.html",
        source=body["slug"],
        feedback=body["feedback"],
        heading=heading,
        layout=layout,
        items=[_shown(item, slot) for slot, item in enumerate(body["items"], start=1)],
        reserves=[_shown(item, None) for item in body.get("reserves", ())],
        arms=b"".join(others).decode(),
    )
    return html.encode()


@router.get(
    "/v1/articles/{slug}/related.html",
    response_class=HTMLResponse,
    responses=FRAGMENT_ERRORS,
    summary="Related articles as an HTML fragment",
)
async def related_fragment(
    slug: SlugPath,
    request: Request,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=50, description="How many suggestions.")] = 5,
    heading: Annotated[
        str, Query(min_length=1, max_length=100, description="The box's heading.")
    ] = DEFAULT_HEADING,
    layout: Annotated[
        Layout, Query(description="`list` (rows) or `cards` (a grid of image cards).")
    ] = "list",
    exclude: Annotated[
        list[SlugValue],
        Query(max_length=200, description="Slugs to leave out (repeatable): the page's own."),
    ] = [],  # noqa: B006 - FastAPI copies defaults per request
    placement: PlacementQuery = DEFAULT_PLACEMENT,
    explore: ExploreQuery = False,
) -> Response:
    """The related list as escaped HTML, for server-side includes (ESI/SSI) and the widget."""
    fragment = Representation(
        media_type="text/html",
        encode=partial(render_fragment, heading=heading, layout=layout),
        key_variant=f"html:{layout}:{heading}",
    )
    query = RelatedQuery(limit=limit, exclude=frozenset(exclude))
    return await related_response(
        services, slug, query, request.headers.get("if-none-match"), fragment, placement, explore
    )


# HEAD (CDNs, uptime checks) is answered as GET, without a body; see `api.routes.related`.
router.add_api_route(
    "/v1/articles/{slug}/related.html", related_fragment, methods=["HEAD"], include_in_schema=False
)


@dataclass(frozen=True, slots=True)
class _Script:
    """widget.js as served: plain and gzipped, each with its own ETag."""

    plain: bytes
    gzipped: bytes
    etag: str
    gzip_etag: str


@cache
def _script() -> _Script:
    plain = (STATIC / "widget.js").read_bytes()
    text = plain.decode()
    return _Script(plain, gzip.compress(plain, mtime=0), etag_for(text), etag_for("gzip:" + text))


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (`gzip`, `gzip;q=0.5`; not `gzip;q=0`)."""
    for coding in accept_encoding.split(","):
        name, _, weight = coding.partition(";")
        if name.strip().lower() == "gzip":
            try:
                return float(weight.strip().lower().removeprefix("q=") or 1) > 0
            except ValueError:
                return False
    return False


@router.get(
    "/widget.js",
    response_class=Response,
    responses={200: {"content": {"text/javascript": {}}, "description": "The script."}},
    summary="The drop-in widget script",
)
async def widget_script(request: Request) -> Response:
    """The script that fills `<div data-related-slug="...">` boxes on a publisher's page."""
    script = _script()
    gzipped = accepts_gzip(request.headers.get("accept-encoding", ""))
    headers = {
        "ETag": script.gzip_etag if gzipped else script.etag,
        "Cache-Control": WIDGET_CACHE_CONTROL,
        "Vary": "Accept-Encoding",
    }
    if not_modified(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    body = script.gzipped if gzipped else script.plain
    return Response(body, media_type="text/javascript", headers=headers)


router.add_api_route("/widget.js", widget_script, methods=["HEAD"], include_in_schema=False)
