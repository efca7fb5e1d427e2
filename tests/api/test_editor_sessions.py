"""Editors' sessions: they expire after RECOMMENDER_SESSION_HOURS, their cookie is `Secure` over
HTTPS (as a trusted proxy reports it), and with no password or token the pages answer 503."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.settings import Settings
from tests.conftest import FakeClock
from tests.support.helpers import build_fake_index
from tests.support.processes import ServeProcess

PASSWORD = "correct horse"
HOURS = 2.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    built, _ = build_fake_index(
        tmp_path / "data", editor_password=PASSWORD, session_hours=HOURS, redis_url=None
    )
    return built


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient | httpx.Client, headers: dict[str, str] | None = None) -> str:
    """Log in; the `Set-Cookie` line of the session cookie. The login form's cookie is sent
    by hand: a client on plain HTTP keeps a `Secure` cookie to itself."""
    page = client.get("/editor/login", headers=headers)
    form = {"name": "Ana", "password": PASSWORD, "csrf": csrf_of(page.text), "next": "/editor"}
    login_cookie = f"editor_login_csrf={page.cookies['editor_login_csrf']}"
    client.cookies.clear()
    response = client.post(
        "/editor/login", data=form, headers={**(headers or {}), "Cookie": login_cookie}
    )
    assert response.status_code == 303, response.text
    return next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("editor_session=")
    )


def test_a_session_ends_after_its_hours(settings: Settings) -> None:
    clock = FakeClock(now=time.time())
    with TestClient(create_app(settings, clock=clock), follow_redirects=False) as client:
        cookie = log_in(client)
        assert f"Max-Age={int(HOURS * 3600)}" in cookie
        clock.advance(HOURS * 3600 - 5)
        assert client.get("/editor").status_code == 200
        csrf = csrf_of(client.get("/editor").text)
        pinned = client.post(
            "/editor/articles/volcano-0/pins", data={"target": "volcano-1", "csrf": csrf}
        )
        assert pinned.status_code == 303 and "error" not in pinned.headers["location"]
        clock.advance(10)
        response = client.get("/editor")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/editor/login?next=")
        late = client.post(
            "/editor/articles/volcano-0/blocks", data={"target": "bitcoin-2", "csrf": csrf}
        )
        assert late.headers["location"].startswith("/editor/login")
        # A fresh login works again, for another full period.
        log_in(client)
        assert client.get("/editor").status_code == 200


@pytest.fixture
def behind_proxy(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`recommender serve`, trusting the loopback address as its reverse proxy."""
    env = {
        "RECOMMENDER_MODEL": settings.encoder.model,
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_EDITOR_PASSWORD": PASSWORD,
        "RECOMMENDER_TRUSTED_PROXIES": '["127.0.0.1"]',
    }
    with ServeProcess(env, tmp_path / "serve.log") as server:
        yield server.url


def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(behind_proxy: str) -> None:
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    with httpx.Client(base_url=behind_proxy, timeout=10) as client:
        assert "; secure" in log_in(client, https).lower()
    with httpx.Client(base_url=behind_proxy, timeout=10) as client:
        assert "; secure" not in log_in(client).lower()  # plain HTTP, e.g. a local demo


def test_an_untrusted_proxy_cannot_claim_https(settings: Settings, tmp_path: Path) -> None:
    env = {
        "RECOMMENDER_MODEL": settings.encoder.model,
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_EDITOR_PASSWORD": PASSWORD,
    }
    with (
        ServeProcess(env, tmp_path / "serve.log") as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        assert "; secure" not in log_in(client, {"X-Forwarded-Proto": "https"}).lower()


def test_without_password_or_token_the_pages_answer_503(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data", redis_url=None)
    assert settings.editor.editor_password is None and settings.editor.admin_token is None
    with TestClient(create_app(settings), follow_redirects=False) as client:
        answers = [
            client.get("/editor"),
            client.get("/editor/login"),
            client.get("/editor/articles/volcano-0"),
            client.get("/editor/draft"),
            client.post(  # a well-formed login, as if a login page had been served before
                "/editor/login",
                data={"name": "Ana", "password": "x", "csrf": "x"},
                headers={"Cookie": "editor_login_csrf=x"},
            ),
            client.post("/editor/articles/volcano-0/pins", data={"target": "bitcoin-1"}),
        ]
        for response in answers:
            assert response.status_code == 503, (response.request.url, response.text)
            assert response.json()["error"] == "unavailable", response.request.url
        assert "editor_session" not in client.cookies
