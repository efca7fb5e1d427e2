"""The widget's two layouts in Chromium: cards and rows, with and without pictures, on a wide
and a phone viewport; the page must not move while the box fills (Cumulative Layout Shift read
with a `PerformanceObserver`), and a box never suggests the page it sits on.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse
from playwright.sync_api import Browser, Page, expect

from api.app import create_app
from index.versions.reindex_pipeline import reindex
from recommender.encoding.hashing_encoder import HashingEncoder
from tests.browser.test_widget import serve_page, widget_records
from tests.support.helpers import REPO, build_fake_index, fake_settings
from tests.support.servers import running_server

SOURCE = "volcano-0"
ITEMS = "li.related-articles-item"
#: A 4x3 grey PNG: every suggestion's picture.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAEklEQVR4nGNoaGhgwA0YRqQ0AOQ6EgGS7L3NAAAAAElFTkSuQmCC"
)
#: Every layout-shift entry's value added up, from the first paint on (buffered).
CLS_OBSERVER = """
window.layoutShift = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.layoutShift += e.value;
}).observe({ type: "layout-shift", buffered: true });
document.addEventListener("DOMContentLoaded", () => {
  window.afterTop = document.getElementById("after").getBoundingClientRect().top;
});
"""
DEMO_SITE = REPO / "demo" / "site"
DEMO_SOURCES = [REPO / "demo" / "articles.jsonl", REPO / "demo" / "putin-victory-alaska-summit.txt"]
VIEWPORTS = {"wide": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
#: Paragraphs above the box, so that it sits inside the first screen, as on the demo page.
STORY = "<p>The story so far, in a paragraph or two.</p>" * 2


@pytest.fixture(scope="module")
def pictures() -> Iterator[str]:
    """A picture server (another origin, as a CDN would be)."""
    site = FastAPI()

    @site.get("/{name}.png")
    async def picture(name: str) -> Response:
        return Response(PNG, media_type="image/png")

    with running_server(site) as base:
        yield base


def api_with(tmp_path: Path, images: str | None) -> Any:
    records = [
        {**record, "image": f"{images}/{record['slug']}.png" if images else None}
        for record in widget_records()
    ]
    settings, _ = build_fake_index(tmp_path / "data", records, redis_url=None)
    return running_server(create_app(settings))


def layout_shift(page: Page) -> float:
    """The page's CLS once every picture in the box has loaded (or failed)."""
    page.wait_for_function(
        "[...document.querySelectorAll('.related-articles img')].every((i) => i.complete)"
    )
    shift: float = page.evaluate("window.layoutShift")
    return shift


@pytest.mark.parametrize("viewport", ["wide", "phone"])
@pytest.mark.parametrize("layout", ["cards", "list"])
@pytest.mark.parametrize("with_images", [True, False], ids=["images", "no-images"])
def test_the_page_does_not_move_while_the_box_fills(
    browser: Browser,
    tmp_path: Path,
    pictures: str,
    artifacts: Path,
    viewport: str,
    layout: str,
    with_images: bool,
) -> None:
    context = browser.new_context(viewport=VIEWPORTS[viewport])  # type: ignore[arg-type]
    page = context.new_page()
    page.add_init_script(CLS_OBSERVER)
    box = f'<div data-related-slug="{SOURCE}" data-limit="4" data-layout="{layout}"></div>'
    try:
        with (
            api_with(tmp_path, pictures if with_images else None) as api,
            # In <head> without async, as the widget docs advise: an async script may run after
            # the first paint, and then the box's reservation itself moves the page.
            serve_page(f'<script src="{api}/widget.js"></script>', STORY + box) as site,
        ):
            page.goto(site)
            expect(page.locator(ITEMS)).to_have_count(4)
            assert page.locator(".related-articles img").count() == (4 if with_images else 0)
            placeholders = page.locator(".related-articles-placeholder").count()
            assert placeholders == (4 if layout == "cards" and not with_images else 0)
            # A card grid: four across on a wide screen, two across on a phone.
            tops = page.locator(ITEMS).evaluate_all(
                "items => items.map((item) => item.getBoundingClientRect().top)"
            )
            rows = {"cards": {"wide": 1, "phone": 2}[viewport], "list": 4}[layout]
            assert len(set(tops)) == rows
            # Nothing wider than the page (no sideways scrolling on a phone).
            assert page.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
            assert layout_shift(page) == 0.0  # CLS 0.00 exactly, not merely below 0.01
            # Chromium leaves moves under 3 px out of CLS: the text below must not move at all.
            after_top = page.evaluate(
                "document.getElementById('after').getBoundingClientRect().top"
            )
            assert after_top == page.evaluate("window.afterTop")
            pictured = "images" if with_images else "no-images"
            page.screenshot(
                path=artifacts / f"widget-{layout}-{pictured}-{viewport}.png", full_page=True
            )
    finally:
        context.close()


@pytest.mark.parametrize(
    ("head", "box_attributes"),
    [
        ("", ' data-page-slug="volcano-1"'),
        ('<link rel="canonical" href="https://gazette.example/world/volcano-1">', ""),
        ('<link rel="canonical" href="/world/volcano-1/">', ""),
    ],
    ids=["data-page-slug", "canonical", "relative-canonical"],
)
def test_a_box_never_suggests_the_page_it_sits_on(
    tmp_path: Path, page: Page, artifacts: Path, head: str, box_attributes: str
) -> None:
    # The sidebar box of volcano-1's page lists the neighbours of volcano-0, minus volcano-1.
    box = f'<div data-related-slug="{SOURCE}" data-limit="8"{box_attributes}></div>'
    with api_with(tmp_path, None) as api:
        everything = httpx.get(f"{api}/v1/articles/{SOURCE}/related", params={"limit": 9}).json()
        slugs = [item["slug"] for item in everything["items"]]
        assert "volcano-1" in slugs[:8]
        script = f'<script src="{api}/widget.js" async></script>'
        with serve_page(head + script, box) as site:
            page.goto(site)
            expect(page.locator(ITEMS)).to_have_count(8)
            shown = page.locator(ITEMS).evaluate_all(
                "items => items.map((item) => item.dataset.slug)"
            )
            page.screenshot(path=artifacts / "widget-page-slug-excluded.png", full_page=True)
    assert shown == [slug for slug in slugs if slug != "volcano-1"][:8]


@pytest.fixture(scope="module")
def demo_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo corpus (`make demo`'s sources), indexed with the hashing encoder."""
    settings = fake_settings(tmp_path_factory.mktemp("demo") / "data", redis_url=None)
    reindex(settings.index, DEMO_SOURCES, HashingEncoder())
    with running_server(create_app(settings)) as base:
        yield base


def demo_site(api: str) -> FastAPI:
    """demo/site as `make demo` serves it, its script tag pointed at `api`."""
    site = FastAPI()
    page = (DEMO_SITE / "index.html").read_text().replace("http://127.0.0.1:8000", api)

    @site.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @site.get("/style.css")
    async def style() -> Response:
        return Response((DEMO_SITE / "style.css").read_bytes(), media_type="text/css")

    return site


@pytest.mark.parametrize("viewport", ["wide", "phone"])
def test_the_demo_page_does_not_move_and_its_sidebar_leaves_out_the_page(
    browser: Browser, demo_api: str, artifacts: Path, viewport: str
) -> None:
    context = browser.new_context(viewport=VIEWPORTS[viewport])  # type: ignore[arg-type]
    page = context.new_page()
    page.add_init_script(CLS_OBSERVER.replace('getElementById("after")', "querySelector('p')"))
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    try:
        with running_server(demo_site(demo_api)) as site:
            page.goto(site)
            for box in page.locator("[data-related-slug]").all():
                box.scroll_into_view_if_needed()
                expect(box.locator(ITEMS).first).to_be_visible()
            page.evaluate("window.scrollTo(0, 0)")
            assert layout_shift(page) == 0.0
            page.screenshot(path=artifacts / f"demo-page-{viewport}.png", full_page=True)
            sidebar = page.locator(".sidebar-box " + ITEMS).evaluate_all(
                "items => items.map((item) => item.dataset.slug)"
            )
    finally:
        context.close()
    page_slug = "putin-victory-alaska-summit"
    assert sidebar and page_slug not in sidebar
    sidebar_requests = [url for url in asked if "/neus-train-1801-0/related.html" in url]
    assert sidebar_requests and all(f"exclude={page_slug}" in url for url in sidebar_requests)
