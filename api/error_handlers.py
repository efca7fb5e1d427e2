"""The one translation of errors into HTTP: `{"error": <stable code>, "detail": <text>}`.

Clients branch on `error`, never on `detail`. No response ever carries a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.access.editor_session import CsrfRejected, EditorsDisabled, LoginRequired
from api.middleware.security_headers import NOSNIFF_HEADERS
from api.responses import JSON, json_response
from api.templating import render
from index.index_errors import CorruptVersionError, NoIndexError, StoreUnavailable
from recommender.errors import (
    ArticleNotFound,
    ExperimentChanged,
    InvalidExperiment,
    InvalidQuery,
    InvalidRecord,
    ModelError,
    OverrideNotFound,
    RecommenderError,
    UndoConflict,
)

log = logging.getLogger(__name__)

#: Domain error → (HTTP status, stable error code). The first matching class wins.
DOMAIN_ERRORS: list[tuple[type[RecommenderError], int, str]] = [
    (ArticleNotFound, 404, "article_not_found"),
    (InvalidRecord, 422, "invalid_article"),
    (InvalidQuery, 422, "invalid_request"),
    (OverrideNotFound, 404, "override_not_found"),
    (UndoConflict, 409, "already_undone"),
    (InvalidExperiment, 422, "invalid_experiment"),
    (ExperimentChanged, 412, "experiment_changed"),
    (NoIndexError, 503, "index_not_ready"),
    (CorruptVersionError, 503, "index_not_ready"),
    (ModelError, 503, "model_unavailable"),
    (StoreUnavailable, 503, "store_unavailable"),
    (RecommenderError, 500, "internal_error"),
]

#: Error codes for plain HTTP statuses raised by the framework or by routes.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    412: "precondition_failed",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


def problem(
    status: int, error: str, detail: Any, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": error, "detail": detail}, status, headers)


def _is_editor_page(request: Request) -> bool:
    """A person's browser asking for an editor page: its errors are pages, not JSON (the forms'
    POSTs and the JSON lookups keep the JSON errors)."""
    path = request.url.path
    return (
        request.method in {"GET", "HEAD"}
        and (path == "/editor" or path.startswith("/editor/"))
        and not path.startswith(("/editor/static/", "/editor/titles"))
    )


def _is_editor_form(request: Request) -> bool:
    """A form an editor's browser sent from the desk (its store errors are pages too)."""
    kind = request.headers.get("content-type", "")
    return (
        request.method == "POST"
        and request.url.path.startswith("/editor/")
        and kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
    )


def _readable(detail: Any) -> str:
    """A JSON error's detail as one sentence for a person."""
    if isinstance(detail, list):
        return "; ".join(
            f"{item['loc'][-1]}: {item['msg']}" if item.get("loc") else str(item.get("msg"))
            for item in detail
        )
    return str(detail)


def _answer(
    request: Request,
    status: int,
    error: str,
    detail: Any,
    headers: dict[str, str] | None = None,
    *,
    as_page: bool = False,
) -> Response:
    """The error as JSON, or as a page on the editor's pages (or where `as_page` asks)."""
    if as_page or _is_editor_page(request):
        page = render("editor_error.html", status=status, error=error, detail=_readable(detail))
        return HTMLResponse(page, status, {**(headers or {}), "Cache-Control": "no-store"})
    return problem(status, error, detail, headers)


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": error.get("msg", "")}
        for error in exc.errors()
    ]


async def _domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RecommenderError)
    status, code = next((s, c) for kind, s, c in DOMAIN_ERRORS if isinstance(exc, kind))
    if status >= 500:
        log.error("%s: %s", code, exc)
    detail = str(exc)
    if isinstance(exc, ArticleNotFound) and _is_editor_page(request):
        detail = (
            f"No served article has the slug {exc.slug!r}: retracted, renamed or never indexed."
        )
    # Nothing was changed: the client may send the same change again shortly.
    unavailable = isinstance(exc, StoreUnavailable)
    retry = {"Retry-After": "1"} if unavailable else None
    # A form sent from the desk gets a page a person can read (a full disk, a database down).
    return _answer(
        request, status, code, detail, retry, as_page=unavailable and _is_editor_form(request)
    )


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _answer(request, 422, "invalid_request", _validation_detail(exc))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = STATUS_CODES.get(exc.status_code, "error")
    return _answer(request, exc.status_code, code, exc.detail, dict(exc.headers or {}))


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    # Sent by Starlette's outermost middleware, past ours: the headers are added here.
    return problem(
        500, "internal_error", "the server failed to answer; it has been logged", NOSNIFF_HEADERS
    )


async def _login_required(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/editor/login?{urlencode({'next': exc.next_path})}", 303)


async def _csrf_rejected(_: Request, __: Exception) -> Response:
    return problem(403, "csrf_rejected", "the form is stale or forged: reload the page and retry")


async def _editors_disabled(_: Request, __: Exception) -> Response:
    return problem(
        503, "unavailable", "the editor pages are disabled: set RECOMMENDER_EDITOR_PASSWORD"
    )


def error_response(description: str, **extra: Any) -> dict[str, Any]:
    """An OpenAPI response of the error body (`extra`: e.g. `headers`)."""
    body = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {}},
    }
    return {"description": description, "content": {JSON: {"schema": body}}, **extra}


def document_errors(
    app: FastAPI,
    responses: dict[str, dict[str, Any]],
    applies: Callable[[str, str, dict[str, Any]], bool],
) -> None:
    """Declare `responses` in `app`'s OpenAPI document on each operation (path, method,
    operation) that `applies` accepts: answers of middleware or the framework, which no route
    declares by itself."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if applies(path, method, operation):
                    for status, response in responses.items():
                        operation["responses"].setdefault(status, response)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


#: What any request body may get before a route sees it (FastAPI parses the JSON, limits.py
#: counts the bytes).
BODY_ERRORS = {
    "400": error_response("The body is not UTF-8 JSON, or is nested too deeply."),
    "413": error_response("The body is larger than RECOMMENDER_MAX_REQUEST_BYTES."),
}


def install_error_handlers(app: FastAPI) -> None:
    document_errors(app, BODY_ERRORS, lambda _path, _method, operation: "requestBody" in operation)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
    app.add_exception_handler(EditorsDisabled, _editors_disabled)
    app.add_exception_handler(RecommenderError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
