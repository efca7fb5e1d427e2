"""The body-size limit and the latency histogram, as plain ASGI middleware."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from api.middleware.body_limit import limit_body_size
from api.middleware.prometheus_metrics import Metrics


def run(app: object, scope: Scope, body: list[bytes]) -> list[Message]:
    """Call an ASGI app with `body` in chunks; the messages it sent."""
    chunks = [{"type": "http.request", "body": b, "more_body": i < len(body) - 1}
              for i, b in enumerate(body)]  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[operator]
    return sent


async def reads_everything(scope: Scope, receive: Receive, send: Send) -> None:
    received = b""
    while True:
        message = await receive()
        received += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(received)).encode()})


def http(
    method: str = "POST", version: str = "1.1", headers: list[tuple[bytes, bytes]] | None = None
) -> Scope:
    return {"type": "http", "method": method, "http_version": version, "headers": headers or []}


def test_a_streamed_body_over_the_limit_is_refused() -> None:
    limited = limit_body_size(reads_everything, 10)
    chunked = [(b"transfer-encoding", b"chunked")]
    sent = run(limited, http(headers=chunked), [b"x" * 6, b"x" * 6])
    assert sent[0]["status"] == 413
    assert run(limited, http(headers=chunked), [b"x" * 5, b"x" * 5])[1]["body"] == b"10"


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    limited = limit_body_size(reads_everything, 10)
    assert run(limited, http(headers=[(b"content-length", b"11")]), [b""])[0]["status"] == 413
    assert run(limited, http(headers=[(b"content-length", b"1x")]), [b""])[0]["status"] == 413


def test_without_length_or_chunking_http1_has_no_body_to_count() -> None:
    limited = limit_body_size(reads_everything, 10)
    assert run(limited, http("GET"), [b""])[0]["status"] == 200
    # other protocol versions may frame bodies without either header: still counted
    assert run(limited, http(version="2"), [b"x" * 6, b"x" * 6])[0]["status"] == 413


def test_latency_is_recorded_per_route_method_and_status() -> None:
    metrics = Metrics()
    statuses = iter([200, 200, 404])

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": next(statuses), "headers": []})
        await send({"type": "http.response.body", "body": b""})

    timed = metrics.middleware(answer)
    for _ in range(3):
        run(timed, http("GET"), [b""])
    text = metrics.render().decode()
    assert (
        'recommender_request_seconds_count{method="GET",route="unmatched",status="200"} 2.0' in text
    )
    assert (
        'recommender_request_seconds_count{method="GET",route="unmatched",status="404"} 1.0' in text
    )
