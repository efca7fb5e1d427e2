"""The editors' JSON API: pins, blocks, global blocks and the audit trail, applied to the public
API at once (cached lists included), and kept across restarts and reindexes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from index.serving.recommender_engine import Recommender
from index.versions.index_version import IndexVersion
from index.versions.version_store import VersionStore
from recommender.overrides import Overrides, Pin
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from tests.support.helpers import ADMIN_TOKEN, build_fake_index, slugs, synthetic_records

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Actor": "ana"}
RELATED = "/v1/articles/{}/related"


def test_a_pin_puts_the_article_first_even_in_a_cached_list(client: TestClient) -> None:
    cached = slugs(client.get(RELATED.format("volcano-0"), params={"limit": 3}))
    assert "bitcoin-1" not in cached
    response = client.post(
        "/v1/articles/volcano-0/pins",
        json={"target": "bitcoin-1", "slot": 1, "reason": "sponsor series"},
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["target"], created["slot"], created["actor"], created["active"]) == (
        "bitcoin-1",
        1,
        "ana",
        True,
    )
    after = slugs(client.get(RELATED.format("volcano-0"), params={"limit": 3}))
    assert after == ["bitcoin-1", *cached[:2]]
    listed = client.get("/v1/articles/volcano-0/pins", headers=AUTH).json()
    assert [(p["target"], p["reason"]) for p in listed] == [("bitcoin-1", "sponsor series")]

    assert client.delete("/v1/articles/volcano-0/pins/bitcoin-1", headers=AUTH).status_code == 204
    assert slugs(client.get(RELATED.format("volcano-0"), params={"limit": 3})) == cached


def test_a_pin_to_a_later_slot_moves_an_article_already_listed(client: TestClient) -> None:
    cached = slugs(client.get(RELATED.format("volcano-0"), params={"limit": 3}))
    client.post("/v1/articles/volcano-0/pins", json={"target": cached[0], "slot": 3}, headers=AUTH)
    assert slugs(client.get(RELATED.format("volcano-0"), params={"limit": 3})) == [
        cached[1],
        cached[2],
        cached[0],
    ]


def test_a_block_removes_the_article_from_that_list_only(client: TestClient) -> None:
    cached = slugs(client.get(RELATED.format("volcano-0"), params={"limit": 3}))
    blocked = cached[0]
    response = client.post(
        "/v1/articles/volcano-0/blocks", json={"target": blocked, "reason": "dup"}, headers=AUTH
    )
    assert response.status_code == 201
    after = slugs(client.get(RELATED.format("volcano-0"), params={"limit": 3}))
    assert blocked not in after and len(after) == 3
    other = "volcano-1" if blocked != "volcano-1" else "volcano-2"
    assert blocked in slugs(client.get(RELATED.format(other), params={"limit": 3}))
    assert [b["target"] for b in client.get("/v1/articles/volcano-0/blocks", headers=AUTH).json()]
    assert (
        client.delete(f"/v1/articles/volcano-0/blocks/{blocked}", headers=AUTH).status_code == 204
    )
    assert slugs(client.get(RELATED.format("volcano-0"), params={"limit": 3})) == cached


def test_a_global_block_removes_the_article_from_every_list_and_beats_pins(
    client: TestClient,
) -> None:
    holders = [
        s
        for s in ("volcano-0", "volcano-2")
        if "volcano-1" in slugs(client.get(RELATED.format(s), params={"limit": 3}))
    ]
    assert holders, "the synthetic corpus puts volcano-1 in its group's lists"
    client.post("/v1/articles/wildfire-0/pins", json={"target": "volcano-1"}, headers=AUTH)
    response = client.post(
        "/v1/blocks", json={"target": "volcano-1", "reason": "legal hold"}, headers=AUTH
    )
    assert response.status_code == 201 and response.json()["source"] is None
    for source in (*holders, "wildfire-0"):
        assert "volcano-1" not in slugs(client.get(RELATED.format(source), params={"limit": 3}))
    draft = client.post("/v1/related", json={"title": "volcano eruption lava ash", "limit": 5})
    assert "volcano-1" not in slugs(draft)
    assert [b["target"] for b in client.get("/v1/blocks", headers=AUTH).json()] == ["volcano-1"]
    assert client.delete("/v1/blocks/volcano-1", headers=AUTH).status_code == 204
    assert "volcano-1" in slugs(client.get(RELATED.format(holders[0]), params={"limit": 3}))


def test_the_audit_trail_lists_each_change_and_undo_reverses_it(client: TestClient) -> None:
    pinned = client.post(
        "/v1/articles/volcano-0/pins",
        json={"target": "bitcoin-1", "reason": "why not"},
        headers=AUTH,
    ).json()
    client.post("/v1/blocks", json={"target": "football-2"}, headers={**AUTH, "X-Actor": "ben"})
    trail = client.get("/v1/audit", params={"slug": "volcano-0"}, headers=AUTH).json()
    assert [(r["action"], r["actor"], r["target"], r["reason"]) for r in trail] == [
        ("pin", "ana", "bitcoin-1", "why not")
    ]
    everything = client.get("/v1/audit", headers=AUTH).json()
    assert [(r["action"], r["actor"]) for r in everything] == [("block", "ben"), ("pin", "ana")]

    undone = client.post(f"/v1/audit/{pinned['audit_id']}/undo", headers=AUTH)
    assert undone.status_code == 201 and undone.json()["action"] == "unpin"
    assert "bitcoin-1" not in slugs(client.get(RELATED.format("volcano-0")))
    again = client.post(f"/v1/audit/{pinned['audit_id']}/undo", headers=AUTH)
    assert again.status_code == 409 and again.json()["error"] == "already_undone"


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/v1/articles/volcano-0/pins", {"target": "nowhere"}, 404, "article_not_found"),
        ("/v1/articles/nowhere/pins", {"target": "volcano-1"}, 404, "article_not_found"),
        ("/v1/articles/volcano-0/pins", {"target": "volcano-0"}, 422, "invalid_request"),
        ("/v1/articles/volcano-0/pins", {"target": "volcano-1", "slot": 0}, 422, "invalid_request"),
        (
            "/v1/articles/volcano-0/pins",
            {"target": "volcano-1", "slot": 51},
            422,
            "invalid_request",
        ),
        (
            "/v1/articles/volcano-0/pins",
            {"target": "volcano-1", "until": "2001-01-01T00:00:00Z"},
            422,
            "invalid_request",
        ),
        (
            "/v1/articles/volcano-0/pins",
            {"target": "volcano-1", "until": "2999-01-01T00:00:00"},
            422,
            "invalid_request",
        ),
        ("/v1/articles/volcano-0/pins", {"target": "../etc"}, 422, "invalid_request"),
        (
            "/v1/articles/volcano-0/blocks",
            {"target": "volcano-1", "extra": 1},
            422,
            "invalid_request",
        ),
        ("/v1/blocks", {"target": "nowhere"}, 404, "article_not_found"),
    ],
)
def test_bad_overrides_are_refused_naming_the_problem(
    client: TestClient, path: str, body: dict[str, Any], status: int, error: str
) -> None:
    response = client.post(path, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error and response.json()["detail"]
    assert client.get("/v1/audit", headers=AUTH).json() == []


def test_removing_an_override_that_does_not_exist_is_404(client: TestClient) -> None:
    for path in ("/v1/articles/volcano-0/pins/volcano-1", "/v1/blocks/volcano-1"):
        response = client.delete(path, headers=AUTH)
        assert response.status_code == 404 and response.json()["error"] == "override_not_found"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 403)],
)
def test_every_curation_route_requires_the_admin_token(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    calls = [
        client.post("/v1/articles/volcano-0/pins", json={"target": "volcano-1"}, headers=headers),
        client.get("/v1/articles/volcano-0/pins", headers=headers),
        client.delete("/v1/articles/volcano-0/pins/volcano-1", headers=headers),
        client.post("/v1/articles/volcano-0/blocks", json={"target": "volcano-1"}, headers=headers),
        client.get("/v1/articles/volcano-0/blocks", headers=headers),
        client.delete("/v1/articles/volcano-0/blocks/volcano-1", headers=headers),
        client.post("/v1/blocks", json={"target": "volcano-1"}, headers=headers),
        client.get("/v1/blocks", headers=headers),
        client.delete("/v1/blocks/volcano-1", headers=headers),
        client.get("/v1/audit", headers=headers),
        client.post("/v1/audit/1/undo", headers=headers),
    ]
    assert [c.status_code for c in calls] == [status] * len(calls)


def test_overrides_survive_a_restart_and_a_reindex(settings: Settings, tmp_path: Path) -> None:
    with TestClient(create_app(settings)) as client:
        client.post("/v1/articles/volcano-0/pins", json={"target": "bitcoin-1"}, headers=AUTH)
        client.post("/v1/blocks", json={"target": "volcano-1"}, headers=AUTH)
        before = client.get("/v1/articles/volcano-0").json()["index_version"]
    records = synthetic_records()
    records[0] = {**records[0], "title": "Volcano story number 0, updated"}
    build_fake_index(settings.data_dir, records, admin_token=ADMIN_TOKEN)
    with TestClient(create_app(settings)) as client:
        response = client.get(RELATED.format("volcano-0"), params={"limit": 3})
        assert response.json()["index_version"] != before
        listed = slugs(response)
        assert listed[0] == "bitcoin-1" and "volcano-1" not in listed


def test_a_pin_expires_by_itself(settings: Settings) -> None:
    store = VersionStore(settings.data_dir)
    version = IndexVersion.load(store, store.current_id(), expected_model=settings.encoder.model)
    now = time.time()
    pin = Pin("volcano-0", "bitcoin-1", 1, now + 60, None, "ana", now)
    recommender = Recommender(version, overrides=Overrides("1", [pin]))
    rows = recommender.related("volcano-0", RelatedQuery(limit=3), now=now)
    assert recommender.card(rows[0].row)["slug"] == "bitcoin-1"
    later = recommender.related("volcano-0", RelatedQuery(limit=3), now=now + 61)
    assert "bitcoin-1" not in [recommender.card(s.row)["slug"] for s in later]


def test_an_expired_pin_changes_the_cache_tag(client: TestClient) -> None:
    until = datetime.now(UTC) + timedelta(seconds=3)
    client.post(
        "/v1/articles/volcano-0/pins",
        json={"target": "bitcoin-1", "until": until.isoformat()},
        headers=AUTH,
    )
    first = client.get(RELATED.format("volcano-0"), params={"limit": 3})
    assert datetime.now(UTC) >= until or slugs(first)[0] == "bitcoin-1"
    deadline = time.monotonic() + 30
    related = RELATED.format("volcano-0")
    while "bitcoin-1" in slugs(later := client.get(related, params={"limit": 3})):
        assert time.monotonic() < deadline, "the pin never expired"
        time.sleep(0.1)
    assert datetime.now(UTC) >= until and later.headers["etag"] != first.headers["etag"]
    assert client.get("/v1/articles/volcano-0/pins", headers=AUTH).json()[0]["active"] is False


def test_a_pin_respects_the_request_filters(client: TestClient) -> None:
    client.post("/v1/articles/volcano-0/pins", json={"target": "bitcoin-1"}, headers=AUTH)
    world = client.get(RELATED.format("volcano-0"), params={"limit": 3, "section": "world"})
    assert "bitcoin-1" not in slugs(world)
    excluded = client.get(RELATED.format("volcano-0"), params={"limit": 3, "exclude": "bitcoin-1"})
    assert "bitcoin-1" not in slugs(excluded)
