"""Impressions and clicks from the widget, and the click-through rates they add up to.

An event counts only when it carries its list's feedback token (`api.serving.feedback_tokens`)
vouching for that target at that slot of that source's list as the box of that impression id
showed it (an exploring box may show a reserve there: `api.serving.exploration_draw`), and an
impression id seen for the first time with that type and slot; every other event is refused,
counted by reason, and changes no counter. Refusals never fail the request: beacons are
fire-and-forget.

Accepted events also go to the impression log (`api.event_log`), without waiting for it. While
the events store cannot tell repeats (Redis down), signed events still go to the log, which
keeps each one once by itself.

Beacons with a JSON or text body are taken by `EventsFastRoute`, a bare Starlette route in front
of the FastAPI route (FastAPI's request handling was a fifth of a beacon's cost); the FastAPI
route documents the endpoint and answers the rest (415). Both answer with `record_beacon`.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import URLPath
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from api.access.admin_token import AdminDep
from api.deps import Services, ServicesDep
from api.event_log.logged_events import LoggedEvent
from api.responses import json_response
from api.schemas import ErrorBody
from api.serving.ctr_report import ctr_report
from api.serving.exploration_draw import shown_at
from api.serving.feedback_tokens import token_header
from api.stores.event_schemas import (
    MAX_EVENT_BYTES,
    CtrReport,
    Event,
    EventBatch,
    EventReceipt,
    Refusal,
)
from index.index_errors import NoIndexError
from recommender.articles import MAX_SLUG_LENGTH, SLUG_PATTERN
from recommender.errors import ArticleNotFound

router = APIRouter(tags=["events"])

#: sendBeacon posts its JSON as text/plain: a CORS-safelisted type, so no preflight is needed.
BODY_TYPES = frozenset({"application/json", "text/plain"})
EVENTS_PATH = "/v1/events"


def _media_type(content_type: str) -> str:
    """The media type of a Content-Type header value, without its parameters."""
    return content_type.partition(";")[0].strip().lower()


def _batch_schema() -> dict[str, Any]:
    """`EventBatch`'s JSON schema with its one definition inlined, for the OpenAPI document."""
    schema = EventBatch.model_json_schema()
    schema["properties"]["events"]["items"] = schema.pop("$defs")["Event"]
    return schema


async def _read_body(request: Request) -> bytes:
    """The request body, refused with 413 beyond `MAX_EVENT_BYTES` (declared or streamed)."""
    too_large = HTTPException(413, f"event batches are limited to {MAX_EVENT_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_EVENT_BYTES:
            raise too_large
    return bytes(body)


def _indexed(services: Services, slugs: set[str]) -> set[str]:
    """The `slugs` the index serves now (live changes applied); none while there is no index."""
    try:
        recommender = services.holder.require()
    except NoIndexError:
        return set()
    known = set()
    for slug in slugs:
        try:
            recommender.row_of(slug)
        except ArticleNotFound:
            continue
        known.add(slug)
    return known


@router.post(
    EVENTS_PATH,
    status_code=202,
    response_model=EventReceipt,
    responses={code: {"model": ErrorBody} for code in (413, 415, 422)},
    summary="Record widget impressions and clicks",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {media: {"schema": _batch_schema()} for media in sorted(BODY_TYPES)},
        }
    },
)
async def record_events(request: Request, services: ServicesDep) -> Response:
    """Count impressions and clicks (JSON, sent as text/plain by sendBeacon) that carry their
    list's feedback token; events about articles the index does not hold are ignored, others
    refused and counted by reason (still 202)."""
    return await record_beacon(services, request)


class EventsFastRoute(BaseRoute):
    """`POST EVENTS_PATH` with a body type of `BODY_TYPES`, as a bare ASGI route in front of the
    FastAPI one: everything around routes (CORS, metrics, limits, error handlers) applies to it
    unchanged, and it answers with `record_beacon` as the route does. It is not in the OpenAPI
    document: the route it stands in for is."""

    path = EVENTS_PATH
    path_format = EVENTS_PATH
    name = "events_fast"
    include_in_schema = False

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != EVENTS_PATH
            or scope.get("root_path")
        ):
            return Match.NONE, {}
        # Starlette's `Headers.get`: the first value, latin-1.
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if _media_type(content_type.decode("latin-1")) not in BODY_TYPES:
            return Match.NONE, {}
        return Match.FULL, {"endpoint": self.handle, "route": self}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # URLs are built from the FastAPI route

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await record_beacon(scope["app"].state.services, request)
        await response(scope, receive, send)


async def record_beacon(services: Services, request: Request) -> Response:
    """The answer to one beacon (`record_events`)."""
    if _media_type(request.headers.get("content-type", "")) not in BODY_TYPES:
        raise HTTPException(415, "send the events as application/json or text/plain JSON")
    try:
        batch = EventBatch.model_validate_json(await _read_body(request))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    refused: Counter[str] = Counter()
    signed = []
    for event in batch.events:
        reason = _refusal(services, event)
        if reason is None:
            signed.append(event)
        else:
            refused[reason] += 1
    known = _indexed(services, {slug for e in signed for slug in (e.source, e.target)})
    relevant = [e for e in signed if e.source in known and e.target in known]
    # Claimed last, so that only events that would count are remembered as seen.
    fresh = await services.events.claim(
        [e.seen_key() for e in relevant], services.feedback.memory_seconds
    )
    accepted = [e for e, new in zip(relevant, fresh or [], strict=False) if new]
    if fresh is not None:
        refused["duplicate"] += len(relevant) - len(accepted)
    await services.events.record(accepted, refused)
    services.event_log.offer(
        logged_events(relevant if fresh is None else accepted, services.feedback.clock())
    )
    receipt = {
        "accepted": len(accepted),
        "ignored": len(signed) - len(relevant),
        "refused": {reason: n for reason, n in refused.items() if n},
    }
    return json_response(receipt, 202)


def _refusal(services: Services, event: Event) -> Refusal | None:
    """Why `event` cannot count whatever the stores say (None: its token vouches for it)."""
    if event.token is None:
        return "missing_token"
    if event.impression is None:
        return "missing_impression"
    refusal = services.feedback.check(
        event.token, event.source, event.target, event.slot, event.impression
    )
    if refusal is None and event.placement is not None:
        header = token_header(event.token)
        if header is None or header.placement != event.placement:
            return "invalid_token"
    return refusal


def logged_events(events: list[Event], at: float) -> list[LoggedEvent]:
    """`events` (each with a token `_refusal` accepted) as the impression log keeps them."""
    logged = []
    for event in events:
        header = token_header(event.token or "")
        if header is None or event.impression is None:  # never, once `_refusal` passed it
            continue
        shown = shown_at(header.exploration, event.impression, event.slot)
        if shown is None:  # never either
            continue
        logged.append(
            LoggedEvent(
                type=event.type,
                at=at,
                source=event.source,
                impression=event.impression,
                position=event.slot,
                target=event.target,
                placement=header.placement,
                arm=header.arm,
                version=header.version,
                propensity=shown.propensity if event.type == "impression" else None,
            )
        )
    return logged


@router.get(
    "/v1/stats/ctr",
    response_model=CtrReport,
    responses={code: {"model": ErrorBody} for code in (401, 403, 422, 503)},
    summary="Click-through rates of the widget",
)
async def ctr_stats(
    _: AdminDep,
    services: ServicesDep,
    slug: Annotated[
        str | None,
        Query(
            pattern=SLUG_PATTERN.pattern,
            max_length=MAX_SLUG_LENGTH,
            description="The article whose box to report; omitted: every article's.",
        ),
    ] = None,
) -> Response:
    """Impressions, clicks and CTR by slot, by target and by source (admin token)."""
    return json_response(await ctr_report(services.events, slug))
