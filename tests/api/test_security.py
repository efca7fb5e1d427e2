"""Security: who may call what, headers, what logs and error bodies may never carry."""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.responses import HTMLResponse

from api.app import create_app
from api.middleware.security_headers import CONTENT_SECURITY_POLICY
from recommender.settings import Settings
from tests.support.helpers import REPO, build_fake_index
from tests.support.processes import ServeProcess

TOKEN = "Zq8-secret-admin-token-7Xw"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: The operations anyone may call; every other one needs credentials.
PUBLIC_OPERATIONS = {
    ("GET", "/v1/articles/{slug}/related"),
    ("GET", "/v1/articles/{slug}/related.html"),
    ("POST", "/v1/related"),
    ("GET", "/v1/articles/{slug}"),
    ("GET", "/v1/index"),
    ("POST", "/v1/events"),
    ("GET", "/widget.js"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}
#: The editors' pages anyone may open: how to log in, and what the login page needs.
PUBLIC_EDITOR_PATHS = {"/editor/login", "/editor/static/{name}"}
PAGE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    built, _ = build_fake_index(
        tmp_path / "data", admin_token=TOKEN, redis_url=None, draft_burst=1, max_request_bytes=2048
    )
    return built


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The service, plus routes a test needs that the service has no reason to have."""
    app = create_app(settings)

    async def page() -> HTMLResponse:
        return HTMLResponse("<p>a page</p>")

    async def own_policy() -> HTMLResponse:
        return HTMLResponse("<p>a page</p>", headers={"Content-Security-Policy": "sandbox"})

    async def crash() -> None:
        raise RuntimeError("internal state that must stay private")

    app.add_api_route("/test/page", page, include_in_schema=False)
    app.add_api_route("/test/own-policy", own_policy, include_in_schema=False)
    app.add_api_route("/test/crash", crash, include_in_schema=False)
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


# --- headers -------------------------------------------------------------------------------------


def test_every_response_says_nosniff(client: TestClient) -> None:
    responses = [
        client.get("/v1/index"),
        client.get("/v1/articles/no-such-article"),
        client.get("/v1/articles/Not_A_Slug/related"),
        client.post(
            "/v1/related", content=b"{" * 4096, headers={"Content-Type": "application/json"}
        ),
        client.post("/v1/related", json={"title": "volcano"}),
        client.post("/v1/related", json={"title": "volcano"}),  # over the burst of 1: 429
        client.get("/widget.js"),
        client.get("/metrics"),
        client.get("/test/crash"),
        client.get("/test/page"),
    ]
    assert {response.status_code for response in responses} >= {200, 404, 413, 422, 429, 500}
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


def test_html_pages_get_the_strict_policy_and_json_does_not(client: TestClient) -> None:
    for path in ("/test/page", "/editor/login"):
        response = client.get(path)
        assert response.headers["content-type"].startswith("text/html")
        assert {name: response.headers.get(name) for name in PAGE_HEADERS} == PAGE_HEADERS
    json_answer = client.get("/v1/articles/volcano-0/related")
    assert not {name for name in PAGE_HEADERS if name in json_answer.headers}


def test_the_fragment_stays_embeddable_and_cacheable(client: TestClient) -> None:
    response = client.get("/v1/articles/volcano-0/related.html")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers
    assert "x-frame-options" not in response.headers
    assert response.headers["cache-control"].startswith("public, max-age=")


def test_the_api_documentation_has_the_pages_policy(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert "cdn" not in response.text.lower() and "<script>" not in response.text
    redoc = client.get("/redoc")
    # ReDoc needs inline styles; scripts stay same-origin files.
    assert "style-src 'self' 'unsafe-inline'" in redoc.headers["content-security-policy"]
    assert "script-src 'self';" in redoc.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert f"/docs/assets/{asset}" in response.text + redoc.text
        assert client.get(f"/docs/assets/{asset}").status_code == 200
    assert client.get("/docs/assets/..%2Fsettings.py").status_code == 404


def test_a_route_keeps_a_security_header_it_sets_itself(client: TestClient) -> None:
    response = client.get("/test/own-policy")
    assert response.headers.get_list("content-security-policy") == ["sandbox"]
    assert response.headers["x-frame-options"] == "DENY"


# --- errors carry no internals ------------------------------------------------------------------


def test_an_unexpected_error_answers_the_error_json_and_logs_the_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = client.get("/test/crash", headers=AUTH)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": "internal_error",
        "detail": "the server failed to answer; it has been logged",
    }
    assert [record.exc_info is not None for record in caplog.records] == [True]
    assert "must stay private" in caplog.text  # the log has it, the response does not


# --- authentication -------------------------------------------------------------------------------


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (method, path, operation) of the app's OpenAPI document."""
    return [
        (method.upper(), path, operation)
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
    ]


def concrete(path: str) -> str:
    """`path` with each `{parameter}` as 1 (a valid slug and a valid id)."""
    return re.sub(r"{[^}]+}", "1", path)


def test_every_operation_but_the_public_ones_needs_the_admin_token(
    app: FastAPI, client: TestClient
) -> None:
    protected = [
        (method, path, operation)
        for method, path, operation in operations(app)
        if (method, path) not in PUBLIC_OPERATIONS
    ]
    assert ("PUT", "/v1/articles/{slug}") in {(method, path) for method, path, _ in protected}
    for method, path, operation in protected:
        url = concrete(path)
        body: dict[str, Any] = {"json": {}} if "requestBody" in operation else {}
        for headers, status, error in [
            ({}, 401, "unauthorized"),
            ({"Authorization": f"Basic {TOKEN}"}, 401, "unauthorized"),
            ({"Authorization": f"Bearer {TOKEN}x"}, 403, "forbidden"),
            ({"Authorization": f"Bearer {TOKEN[:-1]}"}, 403, "forbidden"),
        ]:
            response = client.request(method, url, headers=headers, **body)
            assert (response.status_code, response.json()["error"]) == (status, error), (
                method,
                path,
                headers,
            )
        assert "401" in operation["responses"] and "403" in operation["responses"], (method, path)


def test_the_document_declares_the_admin_token_on_every_operation_that_needs_it(
    settings: Settings,
) -> None:
    """What gives /docs its Authorize button, and each admin operation its lock."""
    document = create_app(settings).openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes["adminToken"]["type"] == "http" and schemes["adminToken"]["scheme"] == "bearer"
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            public = (method.upper(), path) in PUBLIC_OPERATIONS
            assert operation.get("security") == (None if public else [{"adminToken": []}]), path


def test_the_public_operations_need_no_token(app: FastAPI, client: TestClient) -> None:
    for method, path, _ in operations(app):
        if (method, path) in PUBLIC_OPERATIONS:
            response = client.request(method, concrete(path), json={"title": "volcano"})
            assert response.status_code not in (401, 403), (method, path)


def test_every_editor_page_but_the_login_needs_a_session(app: FastAPI, client: TestClient) -> None:
    pages = [
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path and route.path.startswith("/editor") and route.path not in PUBLIC_EDITOR_PATHS
        for method in sorted(route.methods or ())
    ]
    assert pages, "no editor pages to check"
    for cookies in ({}, {"editor_session": "eyJuIjoiZWQifQ==.forged-signature"}):
        client.cookies.clear()
        client.cookies.update(cookies)
        for method, path in pages:
            response = client.request(method, concrete(path), follow_redirects=False)
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/editor/login?"), (method, path)


def test_secrets_are_compared_in_constant_time() -> None:
    """No `==`, `!=` or `in` on a secret's value anywhere in the service: only
    `hmac.compare_digest`, whose time does not tell how much of a guess was right."""
    reads, offenders = 0, []
    for module in sorted((REPO / "api").rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "get_secret_value":
                reads += 1
            if isinstance(node, ast.Compare) and any(
                isinstance(part, ast.Attribute) and part.attr == "get_secret_value"
                for part in ast.walk(node)
            ):
                offenders.append(f"{module.relative_to(REPO)}:{node.lineno}")
    assert reads >= 2  # the admin token and the editors' password are read somewhere
    assert offenders == []


# --- tokens never reach a log or a response -----------------------------------------------------


def test_the_admin_token_is_never_logged_nor_echoed(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    answers = []
    with caplog.at_level(logging.DEBUG):
        for headers in (
            AUTH,
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Bearer {TOKEN} {TOKEN}"},
        ):
            answers.append(client.put("/v1/articles/new-one", json={"title": "t"}, headers=headers))
            answers.append(client.delete("/v1/articles/volcano-2", headers=headers))
            answers.append(client.get("/test/crash", headers=headers))
    assert {answer.status_code for answer in answers} >= {200, 204, 401, 403, 500}
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert TOKEN not in logged
    for answer in answers:
        assert TOKEN not in answer.text and TOKEN not in str(answer.headers)


@contextmanager
def serving(settings: Settings, log_path: Path, **environment: str) -> Iterator[str]:
    """`recommender serve --access-log` over `settings.data_dir`; its output goes to `log_path`."""
    env = {
        "RECOMMENDER_MODEL": settings.encoder.model,
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_ADMIN_TOKEN": TOKEN,
        **environment,
    }
    with ServeProcess(env, log_path, args=["--access-log"]) as server:
        yield server.url
        server.stop()  # SIGTERM: the log is complete when the block ends


def test_the_server_logs_requests_but_never_the_token(settings: Settings, tmp_path: Path) -> None:
    log_path = tmp_path / "serve.log"
    with serving(settings, log_path) as base, httpx.Client(base_url=base) as http:
        answers = [
            http.put("/v1/articles/live-one", json={"title": "Volcano"}, headers=AUTH),
            http.delete("/v1/articles/volcano-1", headers={"Authorization": f"Bearer {TOKEN}x"}),
            http.delete("/v1/articles/volcano-1"),
        ]
    log = log_path.read_text(errors="replace")
    assert [answer.status_code for answer in answers] == [200, 403, 401]
    assert '"PUT /v1/articles/live-one HTTP/1.1" 200' in log  # the access log is on
    assert '"DELETE /v1/articles/volcano-1 HTTP/1.1" 403' in log
    assert '"DELETE /v1/articles/volcano-1 HTTP/1.1" 401' in log
    assert TOKEN not in log


@pytest.mark.parametrize(
    ("trusted", "statuses"),
    [([], [200, 200, 429, 429]), (["127.0.0.1"], [200, 200, 200, 429])],
)
def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy(
    settings: Settings, tmp_path: Path, trusted: list[str], statuses: list[int]
) -> None:
    limits = {
        "RECOMMENDER_DRAFT_BURST": "2",
        "RECOMMENDER_DRAFT_RATE_PER_SECOND": "0.01",
        "RECOMMENDER_TRUSTED_PROXIES": str(trusted).replace("'", '"'),
    }
    clients = ["192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.1"]
    with serving(settings, tmp_path / "serve.log", **limits) as base, httpx.Client() as http:
        answers = [
            http.post(
                f"{base}/v1/related", json={"title": "volcano"}, headers={"X-Forwarded-For": ip}
            ).status_code
            for ip in clients
        ]
    assert answers == statuses


def route_requests(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route of the service (not the fixture's `/test/` ones), HEAD and
    OPTIONS aside, with a served slug."""
    return [
        (method, concrete(route.path.replace("{slug}", "volcano-0")))
        for route in iter_route_contexts(app.routes)
        if route.path and not route.path.startswith("/test/")
        for method in sorted((route.methods or {"GET"}) - {"HEAD", "OPTIONS"})
    ]


def editor_login(client: TestClient) -> str:
    """Log in as an editor; the CSRF token of the session."""
    page = client.get("/editor/login").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    form = {"name": "Ana", "password": TOKEN, "csrf": found.group(1), "next": "/editor"}
    assert client.post("/editor/login", data=form, follow_redirects=False).status_code == 303
    session = re.search(r'name="csrf" value="([^"]+)"', client.get("/editor").text)
    assert session is not None
    return session.group(1)


def test_every_route_sends_nosniff_and_every_page_its_headers(
    app: FastAPI, client: TestClient
) -> None:
    """Whatever a route answers (200, 303, 4xx, 5xx), with or without credentials."""
    requests = route_requests(app)
    assert len(requests) > 30, requests
    editor_login(client)
    seen: set[int] = set()
    for method, path in requests:
        for headers in ({}, AUTH):
            response = client.request(method, path, headers=headers, follow_redirects=False)
            where = (method, path, response.status_code)
            assert response.headers["x-content-type-options"] == "nosniff", where
            if not response.headers.get("content-type", "").startswith("text/html"):
                continue
            seen.add(response.status_code)
            assert response.headers["referrer-policy"] == "same-origin", where
            if path.endswith("/related.html"):  # embedded by publishers' pages
                assert "x-frame-options" not in response.headers, where
            else:
                assert response.headers["x-frame-options"] == "DENY", where
            if path not in ("/docs", "/redoc") and not path.endswith("/related.html"):
                assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert seen >= {200}, "no HTML page was answered"


def test_every_editor_form_refuses_a_missing_or_forged_csrf_token(
    app: FastAPI, client: TestClient
) -> None:
    forms = [(method, path) for method, path in route_requests(app) if method == "POST"]
    forms = [(method, path) for method, path in forms if path.startswith("/editor")]
    assert ("POST", "/editor/logout") in forms and len(forms) >= 6, forms
    csrf = editor_login(client)
    fields = {"target": "bitcoin-1", "slot": "1", "name": "Ana", "password": TOKEN}
    for method, path in forms:
        for token in ({}, {"csrf": "forged"}, {"csrf": csrf[:-1]}):
            response = client.request(
                method, path, data={**fields, **token}, follow_redirects=False
            )
            assert response.status_code == 403, (path, token, response.text)
            assert response.json()["error"] == "csrf_rejected", (path, token)
    # Nothing happened: no change is audited, and the session is still open.
    assert client.get("/v1/audit", headers=AUTH).json() == []
    assert client.get("/editor", follow_redirects=False).status_code == 200
