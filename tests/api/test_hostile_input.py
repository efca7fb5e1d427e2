"""Hostile input over HTTP: odd query strings, huge and deeply nested bodies, bad encodings.

Whatever comes in, the answer is a 2xx/304 or a 4xx with the error JSON: never a 5xx, and
nothing a request sends can poison what later requests get.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from tests.support.helpers import build_fake_index

TOKEN = "hostile-input-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON_HEADERS = {"Content-Type": "application/json"}
MAX_BODY = 1_000_000
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
_slugs = itertools.count()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    built, _ = build_fake_index(
        data, admin_token=TOKEN, redis_url=None, draft_rate_per_second=0, max_request_bytes=MAX_BODY
    )
    with TestClient(create_app(built), raise_server_exceptions=False) as test_client:
        yield test_client


def assert_answered(response: Any, allowed: set[int]) -> None:
    """`response` has an allowed status, and a 4xx carries exactly the error JSON."""
    assert response.status_code in allowed, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert set(body) == {"error", "detail"} and isinstance(body["error"], str)
        assert "Traceback" not in response.text


# --- query parameters and slugs of GET /v1/articles/{slug}/related ------------------------------

ODD_TEXT = st.text(max_size=30) | st.sampled_from(
    ["", " ", "\x00", "\r\n", "\x1b[2J", "../", "..%2f", "%00", "\u202e", "\ufeff", "a" * 5000]
)
SLUGS = ODD_TEXT | st.sampled_from(
    ["volcano-0", "bitcoin-2", "no-such-article", "..", "../../etc/passwd", "a/../volcano-0"]
)
PARAMETER_NAMES = st.sampled_from(
    ["limit", "section", "exclude", "max_age_days", "language", "limit[]", "LIMIT"]
) | st.text(max_size=8)
PARAMETER_VALUES = ODD_TEXT | st.sampled_from(
    [
        "1",
        "5",
        "50",
        "51",
        "0",
        "-1",
        "1e3",
        "nan",
        "inf",
        "-inf",
        "0x10",
        " 5",
        "\u0665",
        "1" * 400,
    ]
)


@FUZZ
@given(
    slug=SLUGS,
    parameters=st.lists(st.tuples(PARAMETER_NAMES, PARAMETER_VALUES), max_size=8),
    etag=st.none() | ODD_TEXT | st.just("*"),
)
def test_any_related_request_is_answered_without_a_server_error(
    client: TestClient, slug: str, parameters: list[tuple[str, str]], etag: str | None
) -> None:
    # Dots encoded too: clients would resolve "../" before sending, servers must not.
    segment = quote(slug, safe="").replace(".", "%2E")
    url = f"/v1/articles/{segment}/related?{urlencode(parameters)}"
    headers = {b"If-None-Match": etag.encode("utf-8")} if etag else {}
    response = client.get(url, headers=headers)
    assert_answered(response, {200, 304, 404, 422})
    if response.status_code == 200:
        assert len(response.json()["items"]) <= 50


@pytest.mark.parametrize(
    "path",
    [
        "/v1/articles/../../etc/passwd/related",
        "/v1/articles/%2e%2e%2f%2e%2e%2fetc%2fpasswd/related",
        "/v1/articles/volcano-0%00/related",
        "/v1/articles/volcano-0%0d%0aSet-Cookie:%20x=1/related",
    ],
)
def test_path_like_slugs_are_refused(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert_answered(response, {404, 405, 422})
    assert "set-cookie" not in response.headers


def test_repeated_and_enormous_limits(client: TestClient) -> None:
    related = "/v1/articles/volcano-0/related"
    assert len(client.get(f"{related}?limit=9&limit=2").json()["items"]) == 2  # the last wins
    for limit in ("1" * 400, "1e2", "51", "-1", "0x2", ""):
        response = client.get(f"{related}?limit={limit}")
        assert_answered(response, {422})
        assert response.json()["error"] == "invalid_request"


# --- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/related"), ("PUT", "/v1/articles/huge"), ("POST", "/v1/events")],
)
def test_huge_bodies_are_refused_with_413_declared_or_streamed(
    client: TestClient, method: str, path: str
) -> None:
    huge = b'{"title": "' + b"x" * MAX_BODY + b'"}'

    def streamed() -> Iterator[bytes]:
        for start in range(0, len(huge), 65_536):
            yield huge[start : start + 65_536]

    for content in (huge, streamed()):
        response = client.request(method, path, content=content, headers={**AUTH, **JSON_HEADERS})
        assert_answered(response, {413})
        assert response.json()["error"] == "payload_too_large"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/related"), ("PUT", "/v1/articles/deep")]
)
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"title": ' + b"[" * 100_000,
        b'{"title": "volcano", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b'{"title": "\xff\xfe volcano"}',
        b'{"title": "volcano", "x": ' + b"9" * 5_000 + b"}",
    ],
    ids=["brackets", "open-object", "deep-field", "not-utf8", "long-integer"],
)
def test_unparseable_bodies_get_a_4xx_and_the_service_goes_on(
    client: TestClient, method: str, path: str, body: bytes
) -> None:
    response = client.request(method, path, content=body, headers={**AUTH, **JSON_HEADERS})
    assert_answered(response, {400, 422})
    assert client.get("/v1/articles/volcano-0/related").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        '{"title": "volcano \\ud800 eruption"}',  # a lone surrogate: not encodable text
        '{"title": "volcano", "labels": {"\\udfff": 1}}',
        '{"title": "volcano", "n": 123456789012345678901234567890}',
        '{"title": 1e400}',
        '{"title": "volcano", "n": NaN}',
        '{"title": "volcano", "x": ' + "[" * 300 + "]" * 300 + "}",
    ],
)
def test_articles_json_cannot_store_are_refused_and_poison_nothing(
    client: TestClient, body: str
) -> None:
    slug = f"unstorable-{next(_slugs)}"
    response = client.put(f"/v1/articles/{slug}", content=body, headers={**AUTH, **JSON_HEADERS})
    assert_answered(response, {422})
    assert response.json()["error"] == "invalid_article"
    assert client.get(f"/v1/articles/{slug}").status_code == 404
    assert client.get("/v1/articles/volcano-0/related?limit=50").status_code == 200


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.text(st.characters(codec=None, min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=2)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
ARTICLE_BODIES = st.fixed_dictionaries(
    {"title": st.text(min_size=1, max_size=40) | JSON_VALUES},
    optional={
        name: JSON_VALUES | st.text(max_size=40)
        for name in ("summary", "body", "url", "section", "tags", "published_at", "labels", "slug")
    },
)


@settings(FUZZ, max_examples=60)
@given(article=ARTICLE_BODIES)
def test_a_put_article_is_refused_or_served_as_put(
    client: TestClient, article: dict[str, Any]
) -> None:
    slug = f"fuzzed-{next(_slugs)}"
    article.pop("slug", None)
    body = json.dumps(article)  # NaN, Infinity and lone surrogates are written as JSON allows
    response = client.put(f"/v1/articles/{slug}", content=body, headers={**AUTH, **JSON_HEADERS})
    assert_answered(response, {200, 422})
    card = client.get(f"/v1/articles/{slug}")
    if response.status_code == 200:
        assert card.status_code == 200
        assert card.json()["title"] == str(article["title"]).strip()
        assert client.get(f"/v1/articles/{slug}/related").status_code == 200
    else:
        assert card.status_code == 404


@settings(FUZZ, max_examples=80)
@given(body=JSON_VALUES | ARTICLE_BODIES)
def test_any_draft_body_is_answered_without_a_server_error(client: TestClient, body: Any) -> None:
    response = client.post("/v1/related", content=json.dumps(body), headers=JSON_HEADERS)
    assert_answered(response, {200, 422})
