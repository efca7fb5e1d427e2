"""Safe exploration through the service: a list asked for with `explore=true` carries reserves
(the ranking's next candidates, so blocks, retractions, embargo and filters hold) and its plan,
signed; pinned slots never vary; an event counts only for the item the impression id's draw put
at its slot, and is logged with that item's exact propensity. With the share at 0, or without
`explore=true`, every response is today's, byte for byte."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import LoggedEvent
from api.serving.exploration_draw import parse_segment, shown_at
from api.serving.feedback_tokens import token_header
from recommender.settings import Settings
from tests.support.helpers import (
    ADMIN_TOKEN,
    build_fake_index,
    cache_options,
    post_events,
    synthetic_records,
    wait_for,
)

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RELATED = "/v1/articles/{}/related"
#: Fixed impression ids: every draw below is the same on every run.
IDS = [f"fixed-impression-{i:06d}" for i in range(400)]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def cache_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    return cache_options(request)


@pytest.fixture
def data(tmp_path: Path, cache_backend: dict[str, Any]) -> Settings:
    """Five articles a topic, and one volcano story embargoed until 2099."""
    embargoed = {
        **synthetic_records(5)[0],
        "slug": "volcano-embargoed",
        "published_at": "2099-01-01T00:00:00Z",
    }
    built, _ = build_fake_index(
        tmp_path / "data",
        [*synthetic_records(5), embargoed],
        admin_token=ADMIN_TOKEN,
        **cache_backend,
    )
    return built


def app_client(settings: Settings, share: float) -> TestClient:
    return TestClient(create_app(settings.replaced(exploration=share)))


@pytest.fixture
def client(data: Settings) -> Iterator[TestClient]:
    """Exploring half the boxes, so that fixed ids exercise both branches."""
    with app_client(data, 0.5) as test_client:
        yield test_client


def exploring(client: TestClient, source: str, limit: int = 3) -> dict[str, Any]:
    response = client.get(RELATED.format(source), params={"limit": limit, "explore": "true"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def shown(body: dict[str, Any], impression: str) -> list[str]:
    """What the box `impression` of `body` showed, slot by slot, as widget.js draws it."""
    slugs = [item["slug"] for item in body["items"]]
    header = token_header(body["feedback"]["token"])
    assert header is not None and header.exploration is not None
    entries = slugs + [item["slug"] for item in body["reserves"]]
    shown = [shown_at(header.exploration, impression, slot) for slot in range(1, len(slugs) + 1)]
    return [entries[at.entry - 1] for at in shown if at is not None]


def event(
    body: dict[str, Any], kind: str, slot: int, target: str, impression: str
) -> dict[str, Any]:
    return {
        "type": kind,
        "source": body["slug"],
        "target": target,
        "slot": slot,
        "token": body["feedback"]["token"],
        "impression": impression,
    }


def logged(client: TestClient, data_dir: Path) -> list[LoggedEvent]:
    writer = client.app.state.services.event_log  # type: ignore[attr-defined]
    wait_for(lambda: writer.pending() == 0, "the impression log's writer to catch up")
    return list(FileEventLog(data_dir).read(date(2000, 1, 1), date(2100, 1, 1)))


def test_at_share_zero_or_without_explore_every_response_is_todays(data: Settings) -> None:
    with app_client(data, 0.0) as off, app_client(data, 0.5) as on:
        for route in ("related", "related.html"):
            path = f"/v1/articles/volcano-0/{route}"
            today = off.get(path, params={"limit": "3"})
            for client, params in (
                (off, {"limit": "3", "explore": "true"}),
                (on, {"limit": "3"}),
                (on, {"limit": "3", "explore": "false"}),
            ):
                again = client.get(path, params=params)
                assert again.content == today.content
                assert again.headers["etag"] == today.headers["etag"]
        plain = off.get(RELATED.format("volcano-0"), params={"limit": 3, "explore": "true"})
        assert "reserves" not in plain.json() and set(plain.json()["feedback"]) == {"token", "arm"}
        assert token_header(plain.json()["feedback"]["token"]).exploration is None  # type: ignore[union-attr]
        body = plain.json()
        events = [
            event(body, "impression", slot, item["slug"], IDS[0])
            for slot, item in enumerate(body["items"], start=1)
        ]
        assert post_events(off, events)["accepted"] == 3
        assert [e.propensity for e in logged(off, data.data_dir)] == [1.0, 1.0, 1.0]


def test_an_exploring_list_is_the_list_plus_signed_reserves(client: TestClient) -> None:
    plain = client.get(RELATED.format("volcano-0"), params={"limit": 3}).json()
    body = exploring(client, "volcano-0")
    assert body["items"] == plain["items"]
    reserves = [item["slug"] for item in body["reserves"]]
    assert len(reserves) == 3 and len(set(reserves)) == 3
    assert not set(reserves) & ({item["slug"] for item in body["items"]} | {"volcano-0"})
    # The reserves are the ranking's next candidates.
    longer = client.get(RELATED.format("volcano-0"), params={"limit": 6}).json()
    assert [item["slug"] for item in longer["items"][3:]] == reserves
    assert body["feedback"]["exploration"] == 0.5 and body["feedback"]["pinned"] == []
    for source in ("volcano-3", "bitcoin-0", "election-4", "wildfire-2", "vaccine-1"):
        for limit in (1, 4, 7):
            ranked = client.get(RELATED.format(source), params={"limit": limit}).json()
            assert exploring(client, source, limit)["items"] == ranked["items"]
    assert parse_segment("E5000S3R3") == token_header(body["feedback"]["token"]).exploration  # type: ignore[union-attr]
    response = client.get(RELATED.format("volcano-0"), params={"limit": 3, "explore": "true"})
    assert response.headers["cache-control"].startswith("public")
    etag = response.headers["etag"]
    assert etag != client.get(RELATED.format("volcano-0"), params={"limit": 3}).headers["etag"]
    again = client.get(
        RELATED.format("volcano-0"),
        params={"limit": 3, "explore": "true"},
        headers={"If-None-Match": etag},
    )
    assert again.status_code == 304


def test_the_fragment_carries_the_reserves_in_an_inert_template(client: TestClient) -> None:
    body = exploring(client, "volcano-0")
    html = client.get(
        "/v1/articles/volcano-0/related.html", params={"limit": 3, "explore": "true"}
    ).text
    assert 'data-feedback-exploration="0.5" data-feedback-pinned=""' in html
    assert f'data-feedback-token="{body["feedback"]["token"]}"' in html
    listed, _, reserved = html.partition('<template class="related-articles-reserves">')
    assert re.findall(r'data-slot="(\d+)" data-slug="([^"]+)"', listed) == [
        (str(slot), item["slug"]) for slot, item in enumerate(body["items"], start=1)
    ]
    assert re.findall(r'<li [^>]*data-slug="([^"]+)"', reserved) == [
        item["slug"] for item in body["reserves"]
    ]
    assert "data-slot" not in reserved


def test_pinned_slots_never_vary_and_pinned_articles_are_never_reserves(
    client: TestClient,
) -> None:
    before = exploring(client, "volcano-0")
    first_reserve = before["reserves"][0]["slug"]
    for target, slot in (("bitcoin-1", 2), (first_reserve, 5)):
        pinned = {"target": target, "slot": slot}
        response = client.post("/v1/articles/volcano-0/pins", json=pinned, headers=AUTH)
        assert response.status_code == 201, response.text
    body = exploring(client, "volcano-0")
    assert body["items"][1]["slug"] == "bitcoin-1" and body["feedback"]["pinned"] == [2]
    reserves = [item["slug"] for item in body["reserves"]]
    assert first_reserve not in reserves and "bitcoin-1" not in reserves
    boxes = [shown(body, impression) for impression in IDS]
    assert all(box[1] == "bitcoin-1" for box in boxes)
    # Slot 1 varies: it may trade with slot 3 or take a reserve.
    assert {box[0] for box in boxes} == {
        body["items"][0]["slug"],
        body["items"][2]["slug"],
        *reserves,
    }
    # A click at the pinned slot counts for the pinned article only, with propensity 1.
    explored = next(i for i in IDS if shown(body, i) != [x["slug"] for x in body["items"]])
    assert post_events(client, [event(body, "click", 2, reserves[0], explored)])["refused"] == {
        "invalid_token": 1
    }


def test_blocked_retracted_and_embargoed_articles_are_never_reserves(client: TestClient) -> None:
    body = exploring(client, "volcano-0", limit=2)
    everything = [item["slug"] for item in [*body["items"], *body["reserves"]]]
    assert "volcano-embargoed" not in everything
    blocked, retracted = body["reserves"][0]["slug"], body["reserves"][1]["slug"]
    response = client.post(
        "/v1/articles/volcano-0/blocks", json={"target": blocked, "reason": "dup"}, headers=AUTH
    )
    assert response.status_code == 201, response.text
    assert client.delete(f"/v1/articles/{retracted}", headers=AUTH).status_code == 204
    after = exploring(client, "volcano-0", limit=2)
    shown_now = {item["slug"] for item in [*after["items"], *after["reserves"]]}
    assert not shown_now & {blocked, retracted, "volcano-embargoed"}
    assert len(after["reserves"]) == 3
    filtered = client.get(
        RELATED.format("volcano-0"),
        params={"limit": 2, "explore": "true", "section": "world"},
    ).json()
    sections = {item["section"] for item in [*filtered["items"], *filtered.get("reserves", [])]}
    assert sections == {"world"}


def test_events_count_only_as_the_draw_placed_them_with_exact_propensities(
    client: TestClient, data: Settings
) -> None:
    body = exploring(client, "volcano-0")
    items = [item["slug"] for item in body["items"]]
    reserves = [item["slug"] for item in body["reserves"]]
    plain, explored = IDS[:20], []
    for impression in IDS:
        if shown(body, impression) != items:
            explored.append(impression)
    assert explored and set(explored) != set(IDS)
    boxes = {impression: shown(body, impression) for impression in IDS[:40]}
    impressions = [
        event(body, "impression", slot, target, impression)
        for impression, box in boxes.items()
        for slot, target in enumerate(box, start=1)
    ]
    for chunk in range(0, len(impressions), 50):
        assert post_events(client, impressions[chunk : chunk + 50])["accepted"] == len(
            impressions[chunk : chunk + 50]
        )
    share, free, n_reserves = 0.5, 3, 3
    pairs = free * (free - 1 + n_reserves)  # equally likely (slot, partner) draws
    kinds = set()
    for record in logged(client, data.data_dir):
        if record.target in reserves:
            kinds.add("reserve")
            assert record.propensity == pytest.approx(share / pairs, abs=1e-12)
        elif record.target != items[record.position - 1]:
            kinds.add("exchange")
            assert record.propensity == pytest.approx(2 * share / pairs, abs=1e-12)
        else:
            moved = 1 / free + (free - 1) / pairs
            assert record.propensity == pytest.approx((1 - share) + share * (1 - moved))
    assert kinds == {"reserve", "exchange"}
    assert sum(1 for e in impressions if e["target"] in reserves) == sum(
        1 for box in boxes.values() if set(box) - set(items)
    )

    # Two slots that traded items: each counts at its new slot only.
    traded = next(i for i in explored if sorted(shown(body, i)) == sorted(items))
    box = shown(body, traded)
    first, second = (s for s, (a, b) in enumerate(zip(box, items, strict=True), start=1) if a != b)
    assert (
        post_events(client, [event(body, "click", first, box[first - 1], traded)])["accepted"] == 1
    )
    assert post_events(client, [event(body, "click", first, items[first - 1], traded)])[
        "refused"
    ] == {"invalid_token": 1}
    assert (
        post_events(client, [event(body, "click", second, box[second - 1], traded)])["accepted"]
        == 1
    )

    # A click on the reserve where the draw put it counts; elsewhere, or the displaced item
    # at that slot, or the reserve past the list's end, is refused.
    impression = next(i for i in explored if set(shown(body, i)) - set(items))
    box = shown(body, impression)
    slot = next(s for s, (a, b) in enumerate(zip(box, items, strict=True), start=1) if a != b)
    other = slot % 3 + 1
    assert (
        post_events(client, [event(body, "click", slot, box[slot - 1], impression)])["accepted"]
        == 1
    )
    refused = [
        event(body, "click", other, box[slot - 1], impression),
        event(body, "click", slot, items[slot - 1], impression),
        event(body, "click", 4, reserves[0], impression),
        event(body, "click", 4, reserves[0], plain[0]),
    ]
    assert post_events(client, refused)["refused"] == {"invalid_token": 4}
    # The same reserve at that slot under an id that does not explore there is refused too.
    calm = next(i for i in IDS if shown(body, i) == items)
    receipt = post_events(client, [event(body, "click", slot, box[slot - 1], calm)])
    assert receipt["refused"] == {"invalid_token": 1}
