"""RECOMMENDER_CORS_ORIGINS as a list: listed origins may read every public answer, others get
no `Access-Control-Allow-Origin` (the JSON list, the fragment, events, preflights alike)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.helpers import build_fake_index

LISTED = "https://news.example"
UNLISTED = ("https://evil.example", "http://news.example", "https://news.example.evil", "null")
BEACON = '{"events": [{"type": "impression", "source": "volcano-0", "target": "volcano-1", '
BEACON += '"slot": 1}]}'


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings, _ = build_fake_index(
        tmp_path / "data", redis_url=None, cors_origins=[LISTED, "https://other.example"]
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def cross_origin_requests(client: TestClient, origin: str) -> dict[str, Any]:
    """Each kind of cross-origin request a publisher's page makes, from `origin`."""
    headers = {"Origin": origin}
    return {
        "list": client.get("/v1/articles/volcano-0/related", headers=headers),
        "filtered list": client.get(
            "/v1/articles/volcano-0/related", params={"limit": 2, "section": "world"},
            headers=headers,
        ),
        "fragment": client.get("/v1/articles/volcano-0/related.html", headers=headers),
        "events": client.post(
            "/v1/events", content=BEACON, headers={**headers, "Content-Type": "text/plain"}
        ),
        "preflight": client.options(
            "/v1/related",
            headers={
                **headers,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        ),
    }  # fmt: skip


def test_a_listed_origin_may_read_every_answer(client: TestClient) -> None:
    for kind, response in cross_origin_requests(client, LISTED).items():
        assert response.status_code in (200, 202), (kind, response.text)
        assert response.headers.get("access-control-allow-origin") == LISTED, kind
        assert "origin" in response.headers.get("vary", "").lower(), kind


@pytest.mark.parametrize("origin", UNLISTED)
def test_an_unlisted_origin_gets_no_allow_origin(client: TestClient, origin: str) -> None:
    for kind, response in cross_origin_requests(client, origin).items():
        assert "access-control-allow-origin" not in response.headers, (kind, origin)
        assert response.status_code < 500, (kind, response.text)
    # The same answers, asked again (now from the cache), still name no other origin.
    for kind, response in cross_origin_requests(client, origin).items():
        assert "access-control-allow-origin" not in response.headers, (kind, origin)


def test_a_cached_answer_for_a_listed_origin_is_not_replayed_to_others(
    client: TestClient,
) -> None:
    cross_origin_requests(client, LISTED)
    again = client.get("/v1/articles/volcano-0/related", headers={"Origin": UNLISTED[0]})
    assert again.status_code == 200 and "access-control-allow-origin" not in again.headers
    plain = client.get("/v1/articles/volcano-0/related")
    assert "access-control-allow-origin" not in plain.headers
