"""The fast route for plain related requests answers exactly as the FastAPI route would.

Every request is sent to two apps over the same index: the real one, and one without
`RelatedFastRoute`, where the FastAPI route answers everything. Status, headers (ETag,
Cache-Control, CORS, Vary) and bodies must be equal, and so must the metrics; a probe
middleware tells which route answered, so the fall-through rules are checked too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Scope

from api.app import create_app
from api.routes.related import RelatedFastRoute, plain_related_request
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from tests.support.fast_routes import probed_apps, without_route
from tests.support.helpers import build_fake_index

RELATED = "/v1/articles/{}/related"
ORIGIN = "https://news.example"

#: (path and query, answered by the fast route?)
REQUESTS = [
    (RELATED.format("volcano-0"), True),
    (RELATED.format("volcano-0") + "?limit=3", True),
    (RELATED.format("bitcoin-1") + "?limit=1", True),
    (RELATED.format("bitcoin-1") + "?limit=50", True),
    (RELATED.format("volcano-0") + "?utm_source=mail&limit=3", True),  # unknown: ignored
    (RELATED.format("volcano-0") + "?%6Cimit=3", True),  # decoded as FastAPI decodes it
    (RELATED.format("volcano-0") + "?limit=", False),
    (RELATED.format("volcano-0") + "?limit=05", False),
    (RELATED.format("volcano-0") + "?limit=0", False),
    (RELATED.format("volcano-0") + "?limit=51", False),
    (RELATED.format("volcano-0") + "?limit=abc", False),
    (RELATED.format("volcano-0") + "?limit=3&limit=4", False),
    (RELATED.format("volcano-0") + "?section=world", False),
    (RELATED.format("volcano-0") + "?exclude=volcano-1&limit=2", False),
    (RELATED.format("volcano-0") + "?language=EN", False),
    (RELATED.format("volcano-0") + "?max_age_days=1", False),
    (RELATED.format("no-such-article"), True),  # 404 from the same error handler
    (RELATED.format("Volcano-0"), False),
    (RELATED.format("volcano_0"), False),
    (RELATED.format("volcano-0%0A"), False),
    (RELATED.format("x" * 201), False),
    (RELATED.format("x" * 200), True),
    (RELATED.format("volcano-0") + "/", False),
]


def without_fast_route(app: FastAPI) -> FastAPI:
    return without_route(app, RelatedFastRoute)


@pytest.fixture(params=[["*"], [ORIGIN]], ids=["any-origin", "listed-origin"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    built, _ = build_fake_index(tmp_path / "data", redis_url=None, cors_origins=request.param)
    return built


@pytest.fixture
def apps(settings: Settings) -> Iterator[tuple[TestClient, TestClient, list[str]]]:
    with probed_apps(settings, RelatedFastRoute) as both:
        yield both


def answer(client: TestClient, path: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(path, headers=headers, follow_redirects=False)
    return {
        "status": response.status_code,
        "headers": sorted(response.headers.multi_items()),
        "body": response.content,
    }


def metric_lines(client: TestClient) -> list[str]:
    """Counters and histogram counts (not sums or buckets: those are timings)."""
    return sorted(
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith(("recommender_cache_", "recommender_request_seconds_count"))
    )


@pytest.mark.parametrize("origin", [None, ORIGIN, "https://elsewhere.example"])
def test_both_routes_answer_alike(
    apps: tuple[TestClient, TestClient, list[str]], origin: str | None
) -> None:
    fast, slow, seen = apps
    base = {"Origin": origin} if origin else {}
    for path, plain in REQUESTS:
        etag = slow.get(path, headers=base).headers.get("etag")
        assert fast.get(path, headers=base).headers.get("etag") == etag  # same cache traffic
        variants: list[dict[str, str]] = [base, {**base, "If-None-Match": "*"}]
        if etag:
            variants += [
                {**base, "If-None-Match": etag},
                {**base, "If-None-Match": f'"other", W/{etag}'},
                {**base, "If-None-Match": '"other"'},
            ]
        for headers in variants:
            for attempt in ("miss", "hit"):
                seen.clear()
                got, expected = answer(fast, path, headers), answer(slow, path, headers)
                assert got == expected, (path, headers, attempt)
                assert (seen == ["RelatedFastRoute"]) is plain, (path, headers, seen)
    assert metric_lines(fast) == metric_lines(slow)


def test_the_fast_route_counts_hits_and_latency_under_the_route(
    apps: tuple[TestClient, TestClient, list[str]],
) -> None:
    fast, _, seen = apps
    for _ in range(3):
        assert fast.get(RELATED.format("election-2")).status_code == 200
    assert seen == ["RelatedFastRoute"] * 3
    lines = metric_lines(fast)
    assert "recommender_cache_hits_total 2.0" in lines
    assert "recommender_cache_misses_total 1.0" in lines
    route = 'route="/v1/articles/{slug}/related"'
    assert any(route in line and 'status="200"' in line and line.endswith(" 3.0") for line in lines)


def test_openapi_is_the_fast_route_free_document(settings: Settings) -> None:
    fast, slow = create_app(settings), without_fast_route(create_app(settings))
    assert fast.openapi() == slow.openapi()
    assert "/v1/articles/{slug}/related" in fast.openapi()["paths"]


def test_urls_are_still_built_from_the_routes(settings: Settings) -> None:
    app = create_app(settings)
    assert app.url_path_for("related", slug="a-1") == RELATED.format("a-1")
    assert app.url_path_for("healthz") == "/healthz"


def test_without_an_index_both_answer_503(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=None)
    with (
        TestClient(create_app(settings)) as fast,
        TestClient(without_fast_route(create_app(settings))) as slow,
    ):
        path = RELATED.format("volcano-0")
        got, expected = answer(fast, path, {}), answer(slow, path, {})
        assert got == expected and got["status"] == 503


def scope(path: str, query: bytes = b"", method: str = "GET", **extra: Any) -> Scope:
    return {"type": "http", "method": method, "path": path, "query_string": query, **extra}


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        (b"", 5),
        (b"limit=1", 1),
        (b"limit=50", 50),
        (b"limit=7&utm_source=x&_=123", 7),
        (b"%6cimit=9", 9),
        (b"limit=%33", 3),
        (b"utm_source=x", 5),
    ],
)
def test_plain_requests(query: bytes, limit: int) -> None:
    assert plain_related_request(scope(RELATED.format("a-1"), query)) == (
        "a-1",
        RelatedQuery(limit=limit),
    )


@pytest.mark.parametrize(
    "query",
    [
        b"limit=",
        b"limit=0",
        b"limit=51",
        b"limit=99",
        b"limit=05",
        b"limit=+5",
        b"limit=5.0",
        b"limit=%205",
        b"limit=5&limit=5",
        b"section=world",
        b"section=",
        b"exclude=a-2",
        b"max_age_days=3",
        b"language=en",
        b"limit=5&language=en",
    ],
)
def test_queries_the_fast_route_leaves_to_fastapi(query: bytes) -> None:
    assert plain_related_request(scope(RELATED.format("a-1"), query)) is None


@pytest.mark.parametrize(
    "request_scope",
    [
        scope(RELATED.format("a-1"), method="PUT"),
        scope(RELATED.format("a-1"), method="POST"),
        scope(RELATED.format("a-1"), root_path="/api"),
        scope(RELATED.format("")),
        scope(RELATED.format("-a")),
        scope(RELATED.format("A-1")),
        scope(RELATED.format("a_1")),
        scope(RELATED.format("a-1\n")),
        scope(RELATED.format("a/1")),
        scope(RELATED.format("a" * 201)),
        scope(RELATED.format("a-1") + "/"),
        scope("/v1/articles/a-1"),
        {"type": "websocket", "path": RELATED.format("a-1"), "query_string": b""},
    ],
)
def test_requests_the_fast_route_leaves_to_fastapi(request_scope: Scope) -> None:
    assert plain_related_request(request_scope) is None


def test_the_fast_route_answers_head_as_get() -> None:
    head = plain_related_request(scope(RELATED.format("a-1"), method="HEAD"))
    assert head == plain_related_request(scope(RELATED.format("a-1")))
    assert head is not None
