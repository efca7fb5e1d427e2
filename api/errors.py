"""The one translation of errors into HTTP: `{"error": <stable code>, "detail": <text>}`.

Clients branch on `error`, never on `detail`. No response ever carries a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from api.responses import json_response
from recommender.errors import (
    ArticleNotFound,
    CorruptVersionError,
    InvalidQuery,
    InvalidRecord,
    ModelError,
    NoIndexError,
    RecommenderError,
)

log = logging.getLogger(__name__)

#: Domain error → (HTTP status, stable error code). The first matching class wins.
DOMAIN_ERRORS: list[tuple[type[RecommenderError], int, str]] = [
    (ArticleNotFound, 404, "article_not_found"),
    (InvalidRecord, 422, "invalid_article"),
    (InvalidQuery, 422, "invalid_request"),
    (NoIndexError, 503, "index_not_ready"),
    (CorruptVersionError, 503, "index_not_ready"),
    (ModelError, 503, "model_unavailable"),
    (RecommenderError, 500, "internal_error"),
]

#: Error codes for plain HTTP statuses raised by the framework or by routes.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


def problem(
    status: int, error: str, detail: Any, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": error, "detail": detail}, status, headers)


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": error.get("msg", "")}
        for error in exc.errors()
    ]


async def _domain(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RecommenderError)
    status, code = next((s, c) for kind, s, c in DOMAIN_ERRORS if isinstance(exc, kind))
    if status >= 500:
        log.error("%s: %s", code, exc)
    return problem(status, code, str(exc))


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem(422, "invalid_request", _validation_detail(exc))


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = STATUS_CODES.get(exc.status_code, "error")
    return problem(exc.status_code, code, exc.detail, dict(exc.headers or {}))


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal_error", "the server failed to answer; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RecommenderError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
