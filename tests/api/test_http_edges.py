"""HTTP edges that CDNs, uptime checks and crafted URLs reach, over a real `recommender serve`.

HEAD is answered like GET without a body on the readers' cacheable routes, and an encoded
slash (`%2F`) never lets a path reach a route it does not spell out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import build_fake_index
from tests.processes import ServeProcess

#: Headers a HEAD answer must share with the GET one.
SAME_HEADERS = ("content-type", "content-length", "etag", "cache-control")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("edges")
    settings, _ = build_fake_index(root / "data", redis_url=None)
    env = {"RECOMMENDER_MODEL": "fake-hashing", "RECOMMENDER_DATA_DIR": str(settings.data_dir)}
    with (
        ServeProcess(env, Path(root) / "serve.log") as served,
        httpx.Client(base_url=served.url, timeout=10) as client,
    ):
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "/v1/articles/volcano-0/related",  # the fast route
        "/v1/articles/volcano-0/related?exclude=volcano-1&limit=3",  # the FastAPI route
        "/v1/articles/volcano-0/related.html",
        "/widget.js",
    ],
)
def test_head_is_answered_like_get_without_a_body(server: httpx.Client, path: str) -> None:
    identity = {"Accept-Encoding": "identity"}
    got = server.get(path, headers=identity)
    head = server.head(path, headers=identity)
    assert (got.status_code, head.status_code) == (200, 200), head.text
    assert head.content == b""
    for name in SAME_HEADERS:
        assert head.headers.get(name) == got.headers.get(name), name
    conditional = server.head(path, headers={**identity, "If-None-Match": got.headers["etag"]})
    assert conditional.status_code == 304


def test_head_of_an_unknown_article_is_404(server: httpx.Client) -> None:
    assert server.head("/v1/articles/no-such-article/related").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/v1/articles/volcano-0%2Frelated",  # decoded, this is volcano-0's related list
        "/v1/articles/volcano-0%2frelated.html",
        "/v1/articles/volcano%2F0/related",
        "/v1/articles/volcano-0%2F..%2Fvolcano-1/related",
    ],
)
def test_encoded_slashes_in_slugs_are_refused(server: httpx.Client, path: str) -> None:
    for method in ("GET", "HEAD"):
        response = server.request(method, path)
        assert response.status_code == 404, (method, response.text[:200])
    assert server.get(path).json()["error"] == "not_found"
