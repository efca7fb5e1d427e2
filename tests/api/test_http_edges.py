"""HTTP edges that CDNs, uptime checks, crafted URLs and slow clients reach, over a real
`recommender serve`.

HEAD is answered like GET without a body on the readers' cacheable routes, an encoded slash
(`%2F`) never lets a path reach a route it does not spell out, and a connection that is too
slow to send its headers is closed.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import build_fake_index
from tests.support.processes import ServeProcess

#: Headers a HEAD answer must share with the GET one.
SAME_HEADERS = ("content-type", "content-length", "etag", "cache-control")
HEADER_TIMEOUT_SECONDS = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("edges")
    settings, _ = build_fake_index(root / "data", redis_url=None)
    env = {
        "RECOMMENDER_MODEL": "fake-hashing",
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_SECONDS),
    }
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


@pytest.mark.timing
def test_connections_too_slow_to_send_headers_are_closed(server: httpx.Client) -> None:
    """Slowloris: each connection sends a header byte every 0.2 s and never finishes; another
    sends nothing. The server closes them all once the header timeout passes, and answers."""
    address = ("127.0.0.1", server.base_url.port or 80)
    slow = [socket.create_connection(address, timeout=5) for _ in range(50)]
    silent = socket.create_connection(address, timeout=5)
    for connection in slow:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
    started = time.monotonic()
    still_open = {*slow, silent}
    try:
        # Without a header timeout they stay open for good: the deadline only catches that.
        while still_open and time.monotonic() - started < 10 * HEADER_TIMEOUT_SECONDS + 5:
            readable, _, _ = select.select(list(still_open), [], [], 0.2)
            for connection in readable:
                try:
                    closed = connection.recv(1024) == b""
                except OSError:
                    closed = True
                if closed:
                    still_open.discard(connection)
            for connection in still_open - {silent}:
                try:
                    connection.sendall(b"a")
                except OSError:
                    still_open.discard(connection)
        elapsed = time.monotonic() - started
        assert not still_open, f"{len(still_open)} connections still open after {elapsed:.1f} s"
        assert server.get("/healthz").status_code == 200
    finally:
        for connection in (*slow, silent):
            connection.close()
