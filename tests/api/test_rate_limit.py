"""Rate limits on drafts, events and editors' logins: token buckets in memory and in Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from api.app import create_app
from api.middleware.rate_limit import RateLimiter
from api.stores.rate_buckets import MemoryBuckets, RedisBuckets, Rule
from api.stores.redis_client import make_redis
from recommender.settings import Settings
from tests.conftest import FakeClock
from tests.support.helpers import build_fake_index, fake_settings
from tests.support.redis_server import RedisProcess, free_port

RULE = Rule("drafts", rate=2.0, burst=3)
DRAFT = {"title": "Volcano eruption grounds flights", "summary": "lava ash iceland"}


def redis_buckets(url: str, namespace: str, clock: FakeClock) -> RedisBuckets:
    """Buckets in the Redis at `url` (generous time bound), falling back to memory buckets."""
    return RedisBuckets(
        make_redis(fake_settings(Path("unused"), redis_url=url).redis),
        namespace=namespace,
        timeout_ms=2_000,
        fallback=MemoryBuckets(clock=clock),
        clock=clock,
    )


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


# --- the buckets (their contract suite: tests/contract/test_rate_buckets_contract.py) ------


@pytest.mark.redis
def test_without_redis_buckets_count_locally_and_return_to_redis(
    fake_clock: FakeClock,
    redis_process: RedisProcess,
    redis_namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        shared = redis_buckets(redis_process.url, redis_namespace, fake_clock)
        try:
            assert await shared.take("x", RULE) == 0  # in Redis: the local bucket is untouched
            redis_process.kill()
            # Redis is gone: the local bucket (full) answers, and keeps the limit per process.
            waits = [await shared.take("x", RULE) for _ in range(4)]
            assert waits == [0, 0, 0, pytest.approx(0.5)]
            redis_process.start()  # empty (no persistence): its buckets start full
            fake_clock.advance(1)  # the retry time; the local bucket has refilled 2 tokens
            # The first call after it starts a probe in the background and counts locally.
            assert await shared.take("other", RULE) == 0
            await shared.probe_finished()
            waits = [await shared.take("x", RULE) for _ in range(4)]
            assert waits == [0, 0, 0, pytest.approx(0.5)]  # three: Redis's bucket, not the local
        finally:
            await shared.close()

    with caplog.at_level(logging.INFO, logger="api.stores.rate_buckets"):
        run(scenario)
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if "counted per process" in m]) == 1
    assert any("shared through Redis again" in m for m in messages)


def test_memory_buckets_forget_the_least_recent_client_first(fake_clock: FakeClock) -> None:
    async def scenario() -> None:
        buckets = MemoryBuckets(clock=fake_clock, max_clients=2)
        one = Rule("one", rate=0.001, burst=1)
        for key in ("a", "b", "a", "c"):  # "b" is the least recent when "c" comes
            await buckets.take(key, one)
        assert await buckets.take("a", one) > 0
        assert await buckets.take("b", one) == 0  # forgotten, so full again

    run(scenario)


# --- the middleware ---------------------------------------------------------------------------


def call(app: Any, method: str, path: str, client: str, headers: list[Any] | None = None) -> int:
    """The status `app` answers to one request from `client`."""
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers or [],
        "client": (client, 40000),
        "query_string": b"",
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def limited(fake_clock: FakeClock) -> Any:
    settings = fake_settings(Path("unused"), draft_burst=2, draft_rate_per_second=1)
    return RateLimiter(settings.limits, settings.redis, clock=fake_clock).middleware(ok)


def test_the_limit_is_per_client_address(limited: Any, fake_clock: FakeClock) -> None:
    assert [call(limited, "POST", "/v1/related", "10.0.0.1") for _ in range(3)] == [200, 200, 429]
    assert call(limited, "POST", "/v1/related", "10.0.0.2") == 200
    fake_clock.advance(1)
    assert call(limited, "POST", "/v1/related", "10.0.0.1") == 200


def test_x_forwarded_for_does_not_make_a_new_client(limited: Any) -> None:
    statuses = [
        call(limited, "POST", "/v1/related", "10.0.0.1", [(b"x-forwarded-for", f"192.0.2.{i}")])
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_only_the_limited_posts_are_counted(limited: Any) -> None:
    for method, path in [("GET", "/v1/related"), ("POST", "/v1/index"), ("GET", "/healthz")]:
        assert [call(limited, method, path, "10.0.0.1") for _ in range(5)] == [200] * 5


@pytest.mark.parametrize(
    ("path", "setting"),
    [("/v1/related", "draft"), ("/v1/events", "event"), ("/editor/login", "login")],
)
def test_each_limited_route_has_its_own_settings(
    path: str, setting: str, fake_clock: FakeClock
) -> None:
    limits = {f"{setting}_burst": 2, f"{setting}_rate_per_second": 0.5}
    limited = fake_settings(Path("unused"), **limits)
    app = RateLimiter(limited.limits, limited.redis, clock=fake_clock).middleware(ok)
    assert [call(app, "POST", path, "10.0.0.1") for _ in range(3)] == [200, 200, 429]
    fake_clock.advance(2)
    assert call(app, "POST", path, "10.0.0.1") == 200
    unlimited = fake_settings(Path("unused"), **{**limits, f"{setting}_rate_per_second": 0})
    app = RateLimiter(unlimited.limits, unlimited.redis, clock=fake_clock).middleware(ok)
    assert [call(app, "POST", path, "10.0.0.1") for _ in range(5)] == [200] * 5


# --- the service --------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, cache_backend: dict[str, Any]) -> Settings:
    built, _ = build_fake_index(
        tmp_path / "data", draft_burst=3, draft_rate_per_second=0.01, **cache_backend
    )
    return built


def test_over_the_limit_drafts_get_429_with_retry_after(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        statuses = [client.post("/v1/related", json=DRAFT).status_code for _ in range(3)]
        refused = client.post("/v1/related", json=DRAFT, headers={"Origin": "https://a.example"})
        assert statuses == [200, 200, 200]
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "rate_limited",
            "detail": "too many requests to /v1/related; retry in 100 s",
        }
        assert refused.headers["retry-after"] == "100"  # a token every 100 s
        assert refused.headers["access-control-allow-origin"] == "*"  # browsers may read it
        assert client.get("/v1/articles/volcano-0/related").status_code == 200


@pytest.mark.redis
def test_workers_share_the_limit_through_redis(
    tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    settings, _ = build_fake_index(
        tmp_path / "data",
        draft_burst=2,
        draft_rate_per_second=0.01,
        redis_url=redis_url,
        cache_namespace=redis_namespace,
    )
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        assert first.post("/v1/related", json=DRAFT).status_code == 200
        assert second.post("/v1/related", json=DRAFT).status_code == 200
        assert first.post("/v1/related", json=DRAFT).status_code == 429
        assert second.post("/v1/related", json=DRAFT).status_code == 429


def test_a_dead_redis_never_fails_a_request(tmp_path: Path) -> None:
    settings, _ = build_fake_index(
        tmp_path / "data",
        draft_burst=2,
        draft_rate_per_second=0.01,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
    )
    with TestClient(create_app(settings)) as client:
        statuses = [client.post("/v1/related", json=DRAFT).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]  # counted in the process meanwhile


def test_the_429_is_in_the_openapi_document(tmp_path: Path) -> None:
    schema = create_app(fake_settings(tmp_path)).openapi()
    limited = [
        path
        for path, operations in schema["paths"].items()
        if "429" in operations.get("post", {}).get("responses", {})
    ]
    assert "/v1/related" in limited
    assert set(limited) <= {"/v1/related", "/v1/events", "/editor/login"}
    assert "Retry-After" in schema["paths"]["/v1/related"]["post"]["responses"]["429"]["headers"]
