"""The readers' HTTP API over a real index (hashing encoder), with each cache backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.settings import Settings
from tests.support.helpers import build_fake_index, slugs, synthetic_records

RELATED = "/v1/articles/{}/related"
VOLCANO_1_IMAGE = "https://images.example/volcano-1.jpg"


@pytest.fixture
def settings(tmp_path: Path, cache_backend: dict[str, Any]) -> Settings:
    records = synthetic_records()
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    records.append({**records[0], "slug": "volcano-embargoed", "published_at": future})
    assert records[1]["slug"] == "volcano-1"
    records[1]["image"] = VOLCANO_1_IMAGE
    built, _ = build_fake_index(tmp_path / "data", records, **cache_backend)
    return built


def test_related_returns_the_topic_group_first(client: TestClient) -> None:
    response = client.get(RELATED.format("volcano-0"), params={"limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "volcano-0"
    assert body["index_version"] == client.get("/v1/index").json()["version"]
    assert set(slugs(response)) == {"volcano-1", "volcano-2"}
    item = body["items"][0]
    assert list(item) == [
        "slug",
        "title",
        "url",
        "image",
        "summary",
        "section",
        "published_at",
        "score",
        "reason",
    ]
    assert item["reason"] == "related"
    assert body["items"][0]["score"] >= body["items"][1]["score"]


def test_never_returns_the_article_itself_and_fills_the_list(client: TestClient) -> None:
    for slug in ("volcano-0", "bitcoin-2", "election-1"):
        got = slugs(client.get(RELATED.format(slug), params={"limit": 10}))
        assert slug not in got
        assert len(got) == 10 and len(set(got)) == 10


def test_default_limit_is_five(client: TestClient) -> None:
    assert len(slugs(client.get(RELATED.format("football-0")))) == 5


def test_embargoed_articles_are_never_suggested(client: TestClient) -> None:
    got = slugs(client.get(RELATED.format("volcano-1"), params={"limit": 18}))
    assert "volcano-embargoed" not in got


def test_section_filter_is_repeatable(client: TestClient) -> None:
    params = (("section", "sport"), ("section", "health"), ("limit", 6))
    got = client.get(RELATED.format("volcano-0"), params=params).json()["items"]
    assert len(got) == 6
    assert {item["section"] for item in got} == {"sport", "health"}


def test_exclude_leaves_out_the_given_slugs(client: TestClient) -> None:
    got = slugs(
        client.get(RELATED.format("volcano-0"), params=[("exclude", "volcano-1"), ("limit", 3)])
    )
    assert "volcano-1" not in got and got[0] == "volcano-2"


def test_max_age_days_drops_older_articles(client: TestClient) -> None:
    got = slugs(client.get(RELATED.format("volcano-0"), params={"max_age_days": 1}))
    assert got == []  # the synthetic corpus is from 2024


def test_unknown_slug_is_404_with_a_stable_code(client: TestClient) -> None:
    response = client.get(RELATED.format("no-such-article"))
    assert response.status_code == 404
    assert response.json() == {
        "error": "article_not_found",
        "detail": "no article with slug 'no-such-article'",
    }


@pytest.mark.parametrize(
    "path",
    [
        RELATED.format("volcano-0") + "?limit=0",
        RELATED.format("volcano-0") + "?limit=51",
        RELATED.format("volcano-0") + "?limit=abc",
        RELATED.format("volcano-0") + "?max_age_days=-1",
        RELATED.format("Not_A_Slug"),
        RELATED.format("x" * 201),
    ],
)
def test_bad_parameters_are_422_with_the_same_shape(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["detail"]


def test_etag_and_cache_control_allow_304(client: TestClient, settings: Settings) -> None:
    first = client.get(RELATED.format("volcano-0"))
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == f"public, max-age={settings.cache.http_max_age}"
    again = client.get(RELATED.format("volcano-0"), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    other = client.get(RELATED.format("volcano-0") + "?limit=3")
    assert other.headers["etag"] != etag


def test_second_request_is_served_from_the_cache(client: TestClient) -> None:
    first = client.get(RELATED.format("bitcoin-0")).content
    before = _counter(client, "recommender_cache_hits_total")
    assert client.get(RELATED.format("bitcoin-0")).content == first
    assert _counter(client, "recommender_cache_hits_total") == before + 1


def test_cors_allows_widgets_on_other_origins(client: TestClient) -> None:
    response = client.get(RELATED.format("volcano-0"), headers={"Origin": "https://news.example"})
    assert response.headers["access-control-allow-origin"] in {"*", "https://news.example"}
    assert "etag" in response.headers["access-control-expose-headers"].lower()


def test_article_card_and_index_info(client: TestClient) -> None:
    card = client.get("/v1/articles/volcano-0").json()
    assert card["title"] == "Volcano story number 0" and card["section"] == "world"
    assert card["metadata"]["labels"] == {"topic": "volcano"}
    assert "body" not in card
    info = client.get("/v1/index").json()
    assert info["articles"] == 19 and info["model"] == "fake-hashing"
    assert client.get("/v1/articles/nope").json()["error"] == "article_not_found"


def test_image_is_in_the_card_and_in_every_related_item(client: TestClient) -> None:
    assert client.get("/v1/articles/volcano-1").json()["image"] == VOLCANO_1_IMAGE
    assert client.get("/v1/articles/volcano-0").json()["image"] is None
    items = client.get(RELATED.format("volcano-0"), params={"limit": 5}).json()["items"]
    images = {item["slug"]: item["image"] for item in items}
    assert images.pop("volcano-1") == VOLCANO_1_IMAGE
    assert set(images.values()) == {None}


def test_draft_suggestions_for_unsaved_text(client: TestClient) -> None:
    response = client.post(
        "/v1/related",
        json={"title": "Crypto", "body": "bitcoin exchange price miners wallet", "limit": 3},
    )
    assert response.status_code == 200
    assert response.json()["slug"] is None
    assert all(s.startswith("bitcoin-") for s in slugs(response))


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({}, 422),
        ({"title": ""}, 422),
        ({"title": "x", "limit": 500}, 422),
        ({"title": "x", "unknown": 1}, 422),
        ({"title": "x" * 5000}, 422),
        ({"title": "x", "body": "y" * 2_000_000}, 413),
    ],
)
def test_draft_abuse_is_refused(client: TestClient, payload: dict[str, Any], status: int) -> None:
    response = client.post("/v1/related", json=payload)
    assert response.status_code == status
    assert response.json()["error"] in {"invalid_request", "payload_too_large"}


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["cache"] == "ok" and ready["index_version"]
    client.get(RELATED.format("volcano-0"))
    text = client.get("/metrics").text
    assert 'route="/v1/articles/{slug}/related"' in text
    assert "recommender_index_articles 19.0" in text
    assert "recommender_cache_misses_total" in text


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/articles/{slug}/related",
        "/v1/related",
        "/v1/articles/{slug}",
        "/v1/index",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
    assert client.get("/docs").status_code == 200


def test_without_an_index_the_service_is_up_but_not_ready(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path, redis_url=None))) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        response = client.get(RELATED.format("anything"))
        assert response.status_code == 503 and response.json()["error"] == "index_not_ready"


def _counter(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_the_root_names_the_service_as_a_page_or_as_json(client: TestClient) -> None:
    version = client.get("/v1/index").json()["version"]
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert version in page.text and 'href="/docs"' in page.text and 'href="/editor"' in page.text
    answer = client.get("/", headers={"Accept": "application/json"})
    body = answer.json()
    assert (body["service"], body["version"], body["index_version"]) == (
        "Related articles",
        "0.1.0",
        version,
    )
    assert {"/docs", "/redoc", "/editor", "/widget.js"} <= {link["href"] for link in body["links"]}
    assert "accept" in answer.headers["vary"].lower()


def test_the_root_links_the_demo_page_only_while_the_demo_serves_it(
    client: TestClient, settings: Settings
) -> None:
    def demo_links(answer: dict[str, Any]) -> list[dict[str, Any]]:
        return [link for link in answer["links"] if link["title"] == "Widget demo"]

    assert demo_links(client.get("/", headers={"Accept": "application/json"}).json()) == []
    assert "Widget demo" not in client.get("/").text
    site = "http://127.0.0.1:9101/"
    with TestClient(create_app(settings.replaced(**{"demo_site_url": site}))) as demo:
        (link,) = demo_links(demo.get("/", headers={"Accept": "application/json"}).json())
        page = demo.get("/").text
    assert link["href"] == site
    assert f'<a href="{site}">Widget demo</a>' in page
    assert "`" not in page, "markdown quotes shown literally"


def test_every_operation_has_an_example_request_and_response(client: TestClient) -> None:
    missing = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            bodies = operation.get("requestBody", {}).get("content", {})
            missing += [
                f"{method} {path} request {t}" for t, c in bodies.items() if "example" not in c
            ]
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    contents = response.get("content", {}).items()
                    missing += [
                        f"{method} {path} {status} {t}" for t, c in contents if "example" not in c
                    ]
    assert missing == []
