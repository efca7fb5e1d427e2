"""Request-size limit as a plain ASGI middleware (before any body is parsed)."""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(HTTPException):
    """A streamed body went over the limit. An HTTPException, so that FastAPI, which turns
    other errors met while reading a body into 400s, lets the error handlers answer 413."""


def limit_body_size(app: ASGIApp, max_bytes: int) -> ASGIApp:
    """Answer 413 to bodies over `max_bytes`, declared or streamed."""
    detail = f"request bodies are limited to {max_bytes} bytes"
    refusal = orjson.dumps({"error": "payload_too_large", "detail": detail})

    async def respond_413(send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(refusal)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": refusal})

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        may_have_body = scope.get("http_version") not in ("1.0", "1.1")
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > max_bytes:
                    await respond_413(send)
                    return
                may_have_body = True
            elif name == b"transfer-encoding":
                may_have_body = True
        if not may_have_body:
            # HTTP/1.x frames a body only by Content-Length or Transfer-Encoding: without
            # either there is nothing to count (most GETs), so skip the wrappers below.
            await app(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _TooLarge(413, detail)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await respond_413(send)

    return limited
