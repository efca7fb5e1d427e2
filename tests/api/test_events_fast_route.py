"""The fast route for beacons answers exactly as the FastAPI route would.

Every request is sent to two apps over the same index and key: the real one, and one without
`EventsFastRoute`, where the FastAPI route answers everything. Status, headers (CORS included)
and bodies must be equal, and so must the counters and the metrics; a probe middleware tells
which route answered, so the fall-through rules are checked too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.events import EventsFastRoute
from api.stores.event_schemas import MAX_EVENT_BYTES
from recommender.settings import Settings
from tests.api.test_fast_path import ORIGIN
from tests.support.fast_routes import probed_apps, without_route
from tests.support.helpers import ADMIN_TOKEN, box_events, build_fake_index, impression_id

EVENTS = "/v1/events"
BEACON = "text/plain;charset=UTF-8"


def without_fast_route(app: FastAPI) -> FastAPI:
    return without_route(app, EventsFastRoute)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    built, _ = build_fake_index(
        tmp_path / "data", redis_url=None, cors_origins=[ORIGIN], admin_token=ADMIN_TOKEN
    )
    return built


@pytest.fixture
def apps(settings: Settings) -> Iterator[tuple[TestClient, TestClient, list[str]]]:
    with probed_apps(settings, EventsFastRoute) as both:
        yield both


def requests(client: TestClient) -> list[tuple[str, bytes, dict[str, str], bool]]:
    """(method, body, headers, answered by the fast route?) of beacons good and bad."""
    box = box_events(client, "volcano-0", limit=3)
    forged = [{**event, "token": event["token"][:-2] + "AA"} for event in box]
    click = [{**box[1], "type": "click"}]
    other = [{**event, "impression": impression_id(), "placement": "sidebar"} for event in box]
    unknown = [{**box[0], "target": "no-such-article"}]
    plain = {"Content-Type": BEACON}

    def body(events: list[dict[str, Any]]) -> bytes:
        return json.dumps({"events": events}).encode()

    return [
        ("POST", body(box), plain, True),
        ("POST", body(box), plain, True),  # the same box again: duplicates
        ("POST", body(click), {"Content-Type": "application/json", "Origin": ORIGIN}, True),
        ("POST", body(click), {"Content-Type": " Application/JSON ; x=1"}, True),
        ("POST", body(forged), plain, True),
        ("POST", body(other), plain, True),  # another placement than its token's
        ("POST", body(unknown), plain, True),
        ("POST", body([{k: v for k, v in box[0].items() if k != "token"}]), plain, True),
        ("POST", b'{"events": []}', plain, True),
        ("POST", b"{not json", plain, True),
        ("POST", b" " * (MAX_EVENT_BYTES + 1), plain, True),
        ("POST", body(box), {"Content-Type": "text/html"}, False),
        ("POST", body(box), {}, False),
        ("GET", b"", {}, False),
        ("PUT", body(box), plain, False),
    ]


def answer(client: TestClient, method: str, body: bytes, headers: dict[str, str]) -> Any:
    response = client.request(method, EVENTS, content=body, headers=headers)
    return response.status_code, sorted(response.headers.multi_items()), response.content


def figures(client: TestClient) -> tuple[Any, list[str]]:
    """The CTR report and the request counts of the events route (not timings)."""
    report = client.get("/v1/stats/ctr", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    counts = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("recommender_request_seconds_count") and EVENTS in line
    ]
    return report.json(), sorted(counts)


def test_both_routes_answer_alike(apps: tuple[TestClient, TestClient, list[str]]) -> None:
    fast, slow, seen = apps
    for method, body, headers, plain in requests(fast):
        seen.clear()
        got, expected = answer(fast, method, body, headers), answer(slow, method, body, headers)
        assert got == expected, (method, body[:80], headers)
        assert (seen == ["EventsFastRoute"]) is plain, (method, headers, seen)
    assert figures(fast) == figures(slow)
    assert figures(fast)[0]["totals"]["impressions"] == 3


def test_openapi_is_the_fast_route_free_document(settings: Settings) -> None:
    fast, slow = create_app(settings), without_fast_route(create_app(settings))
    assert fast.openapi() == slow.openapi()
