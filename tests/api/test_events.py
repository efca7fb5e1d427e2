"""Widget events: validation, counting in Redis and in memory, the CTR report and its table."""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import pytest
from anyio.from_thread import start_blocking_portal
from fastapi.testclient import TestClient

from api.app import create_app
from api.serving.ctr_report import ctr_report
from api.stores.event_schemas import MAX_EVENT_BYTES, MAX_EVENTS
from api.stores.memory_event_store import MemoryEventStore
from api.templating import render
from tests.support.helpers import ADMIN_TOKEN, box_events, build_fake_index

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BEACON = {"Content-Type": "text/plain;charset=UTF-8"}  # what sendBeacon sends for a string
JSON_TYPE = {"Content-Type": "application/json"}
T = TypeVar("T")


def run(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`function(*args)` on an event loop of its own thread, as TestClient runs the app (this
    thread's loop may be Playwright's, when browser tests ran first)."""
    with start_blocking_portal() as portal:
        return portal.call(function, *args)


def event(kind: str, target: str, slot: Any, source: str = "volcano-0") -> dict[str, Any]:
    return {"type": kind, "source": source, "target": target, "slot": slot}


def post(client: TestClient, events: list[dict[str, Any]], **headers: str) -> Any:
    return client.post(
        "/v1/events", content=json.dumps({"events": events}), headers=headers or BEACON
    )


def stats(client: TestClient, slug: str | None = None) -> dict[str, Any]:
    response = client.get("/v1/stats/ctr", params={"slug": slug} if slug else {}, headers=AUTH)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_impressions_and_clicks_are_counted_by_slot_and_target(client: TestClient) -> None:
    boxes = [box_events(client, "volcano-0", limit=3) for _ in range(2)]
    assert [e["target"] for e in boxes[0]] == ["volcano-1", "volcano-2", "wildfire-0"]
    for box in boxes:
        response = post(client, box)
        assert response.status_code == 202
        assert response.json() == {"accepted": 3, "ignored": 0, "refused": {}}
    click = box_events(client, "volcano-0", "click", [2], impression=boxes[0][0]["impression"])
    assert post(client, click).status_code == 202
    report = stats(client, "volcano-0")
    assert report["source"] == "volcano-0" and report["available"] is True
    assert report["totals"] == {"impressions": 6, "clicks": 1, "ctr": round(1 / 6, 4)}
    assert report["by_slot"] == [
        {"slot": 1, "impressions": 2, "clicks": 0, "ctr": 0.0},
        {"slot": 2, "impressions": 2, "clicks": 1, "ctr": 0.5},
        {"slot": 3, "impressions": 2, "clicks": 0, "ctr": 0.0},
    ]
    # Most clicked first, then most shown, then by slug.
    assert report["by_target"] == [
        {"target": "volcano-2", "impressions": 2, "clicks": 1, "ctr": 0.5},
        {"target": "volcano-1", "impressions": 2, "clicks": 0, "ctr": 0.0},
        {"target": "wildfire-0", "impressions": 2, "clicks": 0, "ctr": 0.0},
    ]
    assert report["by_source"] == [
        {"source": "volcano-0", "impressions": 6, "clicks": 1, "ctr": round(1 / 6, 4)}
    ]
    assert set(report["refused"].values()) == {0}


def test_json_bodies_are_accepted_too(client: TestClient) -> None:
    response = post(client, box_events(client, "bitcoin-0", limit=1), **JSON_TYPE)
    assert response.status_code == 202
    assert stats(client, "bitcoin-0")["totals"]["impressions"] == 1


def test_without_slug_every_source_is_reported(client: TestClient) -> None:
    post(client, box_events(client, "volcano-0", limit=2))
    shown_bitcoin = box_events(client, "bitcoin-0", limit=1)
    click = box_events(
        client, "bitcoin-0", "click", limit=1, impression=shown_bitcoin[0]["impression"]
    )
    post(client, [*shown_bitcoin, *click])
    report = stats(client)
    assert report["source"] is None
    assert report["totals"] == {"impressions": 3, "clicks": 1, "ctr": round(1 / 3, 4)}
    assert report["by_source"] == [
        {"source": "bitcoin-0", "impressions": 1, "clicks": 1, "ctr": 1.0},
        {"source": "volcano-0", "impressions": 2, "clicks": 0, "ctr": 0.0},
    ]
    assert report["by_slot"][0] == {"slot": 1, "impressions": 2, "clicks": 1, "ctr": 0.5}
    assert stats(client, "election-0")["by_slot"] == []  # no box shown: nothing to report


def test_events_about_articles_retracted_since_the_list_was_shown_are_ignored(
    client: TestClient,
) -> None:
    box = box_events(client, "volcano-0", limit=2)
    assert client.delete("/v1/articles/volcano-1", headers=AUTH).status_code == 204
    assert post(client, box).json() == {"accepted": 1, "ignored": 1, "refused": {}}
    assert [row["target"] for row in stats(client)["by_target"]] == ["volcano-2"]


@pytest.mark.parametrize(
    "body",
    [
        {"events": [{**event("impression", "volcano-1", 1), "type": "view"}]},
        {"events": [event("impression", "volcano-1", 0)]},
        {"events": [event("impression", "volcano-1", 51)]},
        {"events": [event("impression", "volcano-1", "1")]},
        {"events": [event("impression", "volcano-1", 1.5)]},
        {"events": [event("impression", "volcano-1", True)]},
        {"events": [event("impression", "Volcano-1", 1)]},
        {"events": [event("impression", "volcano-1\n", 1)]},
        {"events": [event("impression", "x" * 201, 1)]},
        {"events": [event("impression", "volcano-1", 1, source="../etc")]},
        {"events": [{**event("impression", "volcano-1", 1), "extra": 1}]},
        {"events": [{"type": "click", "source": "volcano-0", "slot": 1}]},
        {"events": [{**event("impression", "volcano-1", 1), "impression": "a" * 15}]},
        {"events": [{**event("impression", "volcano-1", 1), "impression": "a" * 65}]},
        {"events": [{**event("impression", "volcano-1", 1), "impression": "a/" * 10}]},
        {"events": [{**event("impression", "volcano-1", 1), "token": 7}]},
        {"events": [{**event("impression", "volcano-1", 1), "token": "t" * 1025}]},
        {"events": []},
        {"events": [event("impression", "volcano-1", 1)] * (MAX_EVENTS + 1)},
        {"events": {"type": "click"}},
        {},
        [],
    ],
)
def test_invalid_batches_are_refused_with_422(client: TestClient, body: Any) -> None:
    response = client.post("/v1/events", content=json.dumps(body), headers=BEACON)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request" and response.json()["detail"]
    assert stats(client)["by_slot"] == []  # nothing of a refused batch is counted


def test_a_body_that_is_not_json_is_refused_with_422(client: TestClient) -> None:
    response = client.post("/v1/events", content=b"events=1\xff", headers=BEACON)
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"


def test_large_bodies_are_refused_with_413(client: TestClient) -> None:
    body = json.dumps({"events": [event("impression", "volcano-1", 1)]}) + " " * MAX_EVENT_BYTES
    response = client.post("/v1/events", content=body, headers=BEACON)
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is counted as it streams
        yield body.encode()

    streamed = client.post("/v1/events", content=chunks(), headers=BEACON)
    assert streamed.status_code == 413 and streamed.json()["error"] == "payload_too_large"


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
def test_other_media_types_are_refused_with_415(client: TestClient, content_type: str) -> None:
    body = json.dumps({"events": [event("impression", "volcano-1", 1)]})
    response = client.post("/v1/events", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"


def test_beacons_from_other_origins_need_no_preflight(client: TestClient) -> None:
    origin = {"Origin": "https://news.example"}
    response = post(client, box_events(client, "volcano-0", limit=1), **BEACON, **origin)
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, 403, "forbidden"),
    ],
)
def test_stats_need_the_admin_token(
    client: TestClient, headers: dict[str, str], status: int, error: str
) -> None:
    response = client.get("/v1/stats/ctr", headers=headers)
    assert response.status_code == status and response.json()["error"] == error


def test_stats_refuse_a_malformed_slug(client: TestClient) -> None:
    response = client.get("/v1/stats/ctr", params={"slug": "Not A Slug"}, headers=AUTH)
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_without_redis_events_are_dropped_and_reported_never_a_5xx(tmp_path: Path) -> None:
    settings, _ = build_fake_index(
        tmp_path / "data", admin_token=ADMIN_TOKEN, redis_url=closed_port_url()
    )
    with TestClient(create_app(settings)) as client:
        assert post(client, box_events(client, "volcano-0", limit=2)).status_code == 202
        report = stats(client, "volcano-0")
        metrics = client.get("/metrics").text
    assert report["available"] is False
    assert report["totals"] == {"impressions": 0, "clicks": 0, "ctr": None}
    assert "recommender_events_dropped_total 2.0" in metrics


@pytest.mark.redis
def test_redis_counts_outlive_the_app(tmp_path: Path, redis_url: str, redis_namespace: str) -> None:
    settings, _ = build_fake_index(
        tmp_path / "data",
        admin_token=ADMIN_TOKEN,
        redis_url=redis_url,
        events_namespace=redis_namespace,
    )
    with TestClient(create_app(settings)) as client:
        post(client, box_events(client, "volcano-0", limit=1))
    with TestClient(create_app(settings)) as client:
        assert stats(client, "volcano-0")["totals"]["impressions"] == 1


class Cells(HTMLParser):
    """The text of each table's cells, row by row, plus the paragraphs."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.paragraphs: list[str] = []
        self._caption = ""
        self._text: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.tables[self._caption].append([])
        if tag in {"caption", "th", "td", "p"}:
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._text is None or tag not in {"caption", "th", "td", "p"}:
            return
        text = "".join(self._text).strip()
        self._text = None
        if tag == "caption":
            self._caption = text
            self.tables[text] = []
        elif tag == "p":
            self.paragraphs.append(text)
        else:
            self.tables[self._caption][-1].append(text)


def test_ctr_table_renders_the_report(client: TestClient) -> None:
    shown = box_events(client, "volcano-0", limit=2)
    click = box_events(client, "volcano-0", "click", [2], impression=shown[0]["impression"])
    post(client, [*shown, *click])
    page = Cells(render("_ctr_table.html", ctr=stats(client, "volcano-0"), titles={}))
    assert page.paragraphs == ["Impressions 2 · clicks 1 · CTR 50.0 %"]
    assert page.tables["By slot"] == [
        ["Slot", "Impressions", "Clicks", "CTR"],
        ["1", "1", "0", "0.0 %"],
        ["2", "1", "1", "100.0 %"],
    ]
    assert page.tables["By suggested article"][1:] == [
        ["volcano-2", "1", "1", "100.0 %"],
        ["volcano-1", "1", "0", "0.0 %"],
    ]
    assert "By article showing the box" not in page.tables  # one source: no per-source table
    everything = Cells(render("_ctr_table.html", ctr=stats(client), titles={}))
    assert everything.tables["By article showing the box"][1:] == [
        ["volcano-0", "2", "1", "50.0 %"]
    ]
    post(client, [event("click", "volcano-1", 1), *click])  # no token; a second click
    refused = Cells(render("_ctr_table.html", ctr=stats(client), titles={})).paragraphs[-1]
    assert refused == "Beacons not counted (whole service): missing token 1 · duplicate 1"


def test_ctr_table_says_when_there_is_nothing_to_show() -> None:
    empty = run(ctr_report, MemoryEventStore(), "volcano-0")
    assert Cells(render("_ctr_table.html", ctr=empty, titles={})).paragraphs == [
        "No impressions or clicks recorded yet."
    ]
    unavailable = {**empty, "available": False}
    assert "cannot be read" in Cells(render("_ctr_table.html", ctr=unavailable)).paragraphs[0]
