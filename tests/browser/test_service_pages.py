"""The service's own pages in Chromium with no internet: `/`, and the API documentation
(Swagger UI, ReDoc) from packaged assets under the strict CSP of every page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from api.app import create_app
from tests.support.helpers import build_fake_index
from tests.support.servers import running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    settings, _ = build_fake_index(tmp_path / "data", redis_url=None)
    with running_server(create_app(settings)) as url:
        yield url


def offline(page: Page, server: str) -> list[str]:
    """Refuse every request off `server` (as with no internet); returns what was refused,
    and what the console reported as errors (a CSP refusal among them)."""
    problems: list[str] = []

    def refuse(route: Route) -> None:
        problems.append(f"off-site: {route.request.url}")
        route.abort()

    page.route(lambda url: not url.startswith(server), refuse)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    return problems


@pytest.mark.parametrize(
    ("path", "ready"),
    [("/docs", ".swagger-ui .opblock-summary-path"), ("/redoc", "[data-section-id] h2")],
)
def test_the_api_documentation_works_offline(
    server: str, page: Page, artifacts: Path, path: str, ready: str
) -> None:
    problems = offline(page, server)
    response = page.goto(server + path)
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(ready).first).to_be_visible(timeout=20_000)
    expect(page.get_by_text("/v1/articles/{slug}/related").first).to_be_attached()
    page.screenshot(path=artifacts / f"api-docs{path.replace('/', '-')}.png")
    # Refused by the CSP, harmlessly: ReDoc's search worker (a blob: script; it searches in the
    # page instead) and its "powered by" logo from its CDN (nothing leaves for the internet).
    refused = ("Creating a worker from 'blob:", "Loading the image 'https://cdn.redoc.ly/")
    assert [p for p in problems if not p.startswith(refused)] == []


def test_the_home_page_names_the_service_and_links_onwards(
    server: str, page: Page, artifacts: Path
) -> None:
    problems = offline(page, server)
    page.goto(server + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Related articles")
    for name in ("API documentation", "API reference", "Editors' desk"):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    # The demo page exists only while `make demo` runs (RECOMMENDER_DEMO_SITE_URL).
    expect(page.get_by_role("link", name="Widget demo")).to_have_count(0)
    page.screenshot(path=artifacts / "home.png", full_page=True)
    assert problems == []


def test_the_admin_routes_can_be_tried_in_the_docs_with_the_token(
    tmp_path: Path, page: Page, artifacts: Path
) -> None:
    token = "docs-admin-token"
    settings, _ = build_fake_index(tmp_path / "data", admin_token=token, redis_url=None)
    with running_server(create_app(settings)) as server:
        page.goto(f"{server}/docs")
        page.get_by_role("button", name="Authorize").first.click()
        dialog = page.locator(".dialog-ux")
        expect(dialog).to_contain_text("adminToken")
        dialog.locator("input").first.fill(token)
        dialog.get_by_role("button", name="Apply credentials").click()
        dialog.get_by_role("button", name="Close").click()
        operation = page.locator("#operations-curation-list_global_blocks_v1_blocks_get")
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        operation.get_by_role("button", name="Execute").click()
        status = operation.locator(".live-responses-table tbody .response-col_status").first
        expect(status).to_have_text("200")
        page.screenshot(path=artifacts / "api-docs-authorized.png")
