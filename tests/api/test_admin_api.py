"""The admin API: auth, live upserts and retractions through HTTP, cache invalidation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from console.main import app as console
from recommender.settings import Settings
from tests.support.helpers import ADMIN_TOKEN, build_fake_index, slugs

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RELATED = "/v1/articles/{}/related"

NEW_VOLCANO = {
    "title": "Volcano eruption update",
    "summary": "Latest on the volcano: volcano eruption lava ash iceland flights grounded magma",
    "body": "volcano eruption lava ash iceland flights grounded magma crater update",
    "section": "world",
    "published_at": "2024-03-12T13:00:00Z",
}


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Basic abc"}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, 403, "forbidden"),
    ],
)
def test_admin_routes_require_the_token(
    client: TestClient, headers: dict[str, str], status: int, error: str
) -> None:
    for response in (
        client.put("/v1/articles/new-one", json=NEW_VOLCANO, headers=headers),
        client.delete("/v1/articles/volcano-0", headers=headers),
    ):
        assert response.status_code == status and response.json()["error"] == error
    assert "volcano-0" in slugs(client.get(RELATED.format("volcano-1")))


def test_without_a_configured_token_the_admin_api_is_off(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data", redis_url=None)
    with TestClient(create_app(settings)) as client:
        response = client.put("/v1/articles/x", json=NEW_VOLCANO, headers=AUTH)
        assert response.status_code == 503


def test_a_put_article_is_recommendable_at_once(client: TestClient) -> None:
    before = client.get(RELATED.format("volcano-1"), params={"limit": 3})
    response = client.put("/v1/articles/volcano-live", json=NEW_VOLCANO, headers=AUTH)
    assert response.status_code == 200 and response.json()["status"] == "upserted"
    own = client.get(RELATED.format("volcano-live"), params={"limit": 2})
    assert own.status_code == 200 and all(s.startswith("volcano-") for s in slugs(own))
    after = client.get(RELATED.format("volcano-1"), params={"limit": 3})
    assert "volcano-live" in slugs(after)
    assert after.headers["etag"] != before.headers["etag"]
    assert client.get("/v1/articles/volcano-live").json()["title"] == NEW_VOLCANO["title"]


def test_a_retraction_removes_the_article_from_cached_lists(client: TestClient) -> None:
    cached = client.get(RELATED.format("volcano-0"), params={"limit": 3})
    assert "volcano-1" in slugs(cached)
    assert client.get(RELATED.format("volcano-0"), params={"limit": 3}).content == cached.content
    assert client.delete("/v1/articles/volcano-1", headers=AUTH).status_code == 204
    again = client.get(RELATED.format("volcano-0"), params={"limit": 3})
    assert "volcano-1" not in slugs(again)
    revalidated = client.get(
        RELATED.format("volcano-0"),
        params={"limit": 3},
        headers={"If-None-Match": cached.headers["etag"]},
    )
    assert revalidated.status_code == 200 and "volcano-1" not in slugs(revalidated)
    assert client.get(RELATED.format("volcano-1")).status_code == 404
    assert client.get("/v1/articles/volcano-1").status_code == 404
    assert client.delete("/v1/articles/volcano-1", headers=AUTH).status_code == 204


def retracted_everywhere(client: TestClient, settings: Settings, slug: str) -> list[str]:
    """Where `slug` is still offered: every public list, the fragment, drafts, the export."""
    found = []
    for source in ("volcano-0", "volcano-2", "wildfire-0"):
        for params in ({}, {"limit": 5}, {"section": "world"}, {"exclude": "volcano-2"}):
            if slug in slugs(client.get(RELATED.format(source), params=params)):
                found.append(f"{source} {params}")
        if slug in client.get(RELATED.format(source) + ".html").text:
            found.append(f"{source} fragment")
    draft = client.post("/v1/related", json={"title": "volcano eruption lava", "limit": 10})
    if slug in slugs(draft):
        found.append("draft")
    env = {
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_MODEL": settings.encoder.model,
    }
    export = CliRunner().invoke(console, ["export-neighbours", "--limit", "10"], env=env)
    assert export.exit_code == 0, export.output
    if f'"{slug}"' in export.stdout:
        found.append("export")
    return found


def test_a_retracted_article_is_gone_from_every_answer(
    client: TestClient, settings: Settings
) -> None:
    assert retracted_everywhere(client, settings, "volcano-1") != []  # offered, and cached now
    assert client.delete("/v1/articles/volcano-1", headers=AUTH).status_code == 204
    assert retracted_everywhere(client, settings, "volcano-1") == []
    assert client.get(RELATED.format("volcano-1") + ".html").status_code == 404


def test_retracting_an_unknown_slug_is_404(client: TestClient) -> None:
    response = client.delete("/v1/articles/never-published", headers=AUTH)
    assert response.status_code == 404 and response.json()["error"] == "article_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"summary": "no title"},
        {"title": "x", "published_at": "yesterday"},
        {"title": "x", "slug": "other"},
        {"title": "x", "url": "javascript:alert(1)"},
        {"title": "x", "url": "java\tscript:alert(1)"},
        {"title": "x", "url": "data:text/html,<script>alert(1)</script>"},
    ],
)
def test_invalid_articles_are_422_naming_the_problem(
    client: TestClient, body: dict[str, Any]
) -> None:
    response = client.put("/v1/articles/bad-one", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_article" and response.json()["detail"]


def test_live_changes_survive_a_restart(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        client.put("/v1/articles/volcano-live", json=NEW_VOLCANO, headers=AUTH)
        client.delete("/v1/articles/volcano-2", headers=AUTH)
    with TestClient(create_app(settings)) as client:
        assert client.get(RELATED.format("volcano-live")).status_code == 200
        assert client.get(RELATED.format("volcano-2")).status_code == 404


def test_a_change_made_by_another_process_is_seen_on_the_next_request(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings)) as reader, TestClient(create_app(settings)) as writer:
        assert "volcano-1" in slugs(reader.get(RELATED.format("volcano-0"), params={"limit": 3}))
        writer.delete("/v1/articles/volcano-1", headers=AUTH)
        assert "volcano-1" not in slugs(
            reader.get(RELATED.format("volcano-0"), params={"limit": 3})
        )
