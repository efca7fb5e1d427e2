"""The widget's two layouts in Chromium: cards and rows, with and without pictures, on a wide
and a phone viewport; the page must not move while the box fills (Cumulative Layout Shift read
with a `PerformanceObserver`), and a box never suggests the page it sits on.
"""

from __future__ import annotations

import asyncio
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
from tests.browser.test_widget import recommended_head, serve_page, widget_records
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

    @site.get("/slow/{name}.png")
    async def slow_picture(name: str) -> Response:
        await asyncio.sleep(1.5)  # well after the box has filled
        return Response(PNG, media_type="image/png")

    with running_server(site) as base:
        yield base


def api_with(tmp_path: Path, images: str | None, only: set[str] | None = None) -> Any:
    """The API over the widget corpus (`only` these slugs, when given), pictures at `images`."""
    records = [
        {**record, "image": f"{images}/{record['slug']}.png" if images else None}
        for record in widget_records()
        if only is None or record["slug"] in only
    ]
    settings, _ = build_fake_index(tmp_path / "data", records, redis_url=None, exploration=0)
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
            # The snippet the widget docs advise: the script comes when it comes, and the page
            # reserves the box from the first paint.
            serve_page(recommended_head(api), STORY + box) as site,
        ):
            page.goto(site)
            expect(page.locator(ITEMS)).to_have_count(4)
            # No picture, no picture area: no grey blocks.
            pictures_shown = 4 if with_images else 0
            assert page.locator(".related-articles-thumb").count() == pictures_shown
            assert page.locator(".related-articles img").count() == pictures_shown
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
    ("images", "fallback"),
    [("missing", "box"), ("missing", "around"), ("broken", "box"), ("broken", None)],
    ids=["missing-box", "missing-around-the-box", "broken-box", "broken-without-fallback"],
)
def test_a_fallback_picture_stands_in_for_missing_and_broken_ones(
    tmp_path: Path, page: Page, pictures: str, images: str, fallback: str | None
) -> None:
    page.add_init_script(CLS_OBSERVER)
    fallback_url = f"{pictures}/fallback.png"
    attribute = f' data-fallback-image="{fallback_url}"'
    box = f'<div data-related-slug="{SOURCE}" data-layout="cards"'
    box += f"{attribute}></div>" if fallback == "box" else "></div>"
    if fallback == "around":  # the page's default, for every box in it
        box = f"<div{attribute}>{box}</div>"
    # "broken": every picture's URL answers 404 (the picture server only serves /NAME.png).
    with (
        api_with(tmp_path, f"{pictures}/gone" if images == "broken" else None) as api,
        serve_page(recommended_head(api), STORY + box) as site,
    ):
        page.goto(site)
        expect(page.locator(ITEMS)).to_have_count(4)
        thumbs = page.locator(".related-articles-thumb")
        expect(thumbs).to_have_count(4)
        if fallback:
            page.wait_for_function(
                "[...document.querySelectorAll('.related-articles img')]"
                ".every((i) => i.complete && i.naturalWidth > 0)"
            )
            sources = thumbs.evaluate_all("images => images.map((i) => i.src)")
            assert sources == [fallback_url] * 4
        else:
            # A broken picture keeps its place (the page must not move), on the placeholder.
            page.wait_for_function(
                "[...document.querySelectorAll('.related-articles img')]"
                ".every((i) => i.complete && i.naturalWidth === 0)"
            )
            heights = thumbs.evaluate_all("images => images.map((i) => i.offsetHeight)")
            assert min(heights) > 50
        assert layout_shift(page) == 0.0
        assert page.evaluate("document.getElementById('after').getBoundingClientRect().top") == (
            page.evaluate("window.afterTop")
        )


def box_page(page: Page, api: str, box: str, above: str = STORY) -> Any:
    """`page`, its CLS observed, showing the publisher's page with `box` under `above`."""
    page.add_init_script(CLS_OBSERVER)
    return serve_page(recommended_head(api), above + box)


def reserved_height(page: Page) -> float:
    """The height of the first box, measured at DOMContentLoaded (before it filled)."""
    height: float = page.evaluate("window.reservedHeight")
    return height


RESERVED = (
    "document.addEventListener('DOMContentLoaded', () => { window.reservedHeight ="
    " document.querySelector('[data-related-slug]').getBoundingClientRect().height })"
)


@pytest.mark.parametrize("layout", ["cards", "list"])
def test_slow_pictures_do_not_move_the_page(
    tmp_path: Path, page: Page, pictures: str, layout: str
) -> None:
    box = f'<div data-related-slug="{SOURCE}" data-layout="{layout}"></div>'
    with api_with(tmp_path, f"{pictures}/slow") as api, box_page(page, api, box) as site:
        page.goto(site)
        expect(page.locator(ITEMS)).to_have_count(4)
        assert layout_shift(page) == 0.0  # waits until every slow picture is in
        assert page.locator(".related-articles img").evaluate_all(
            "images => images.every((i) => i.naturalWidth > 0)"
        )
        assert page.evaluate("document.getElementById('after').getBoundingClientRect().top") == (
            page.evaluate("window.afterTop")
        )


def test_fewer_suggestions_than_data_limit_keep_the_reserved_space(
    tmp_path: Path, page: Page
) -> None:
    # Three volcano stories in all: two suggestions where the box has room for four.
    only = {"volcano-0", "volcano-1", "volcano-2"}
    box = f'<div data-related-slug="{SOURCE}" data-limit="4"></div>'
    page.add_init_script(RESERVED)
    with api_with(tmp_path, None, only) as api, box_page(page, api, box) as site:
        page.goto(site)
        expect(page.locator(ITEMS)).to_have_count(2)
        assert layout_shift(page) == 0.0
        box_height = page.locator("[data-related-slug]").bounding_box()["height"]  # type: ignore[index]
        assert box_height == reserved_height(page) > 300
        assert page.evaluate("document.getElementById('after').getBoundingClientRect().top") == (
            page.evaluate("window.afterTop")
        )


def test_a_box_without_suggestions_is_removed(tmp_path: Path, page: Page) -> None:
    # Two stories, one of them the page itself: nothing is left to suggest.
    only = {"volcano-0", "volcano-1"}
    box = f'<div data-related-slug="{SOURCE}" data-page-slug="volcano-1"></div>'
    with api_with(tmp_path, None, only) as api, box_page(page, api, box) as site:
        page.goto(site)
        expect(page.locator("[data-related-slug]")).to_have_count(0)
        assert page.locator(".related-articles").count() == 0
        assert page.locator("#after").is_visible()


def test_a_box_filled_below_the_viewport_keeps_no_space_it_does_not_need(
    tmp_path: Path, page: Page
) -> None:
    # Cards without pictures need less than their reservation: below the viewport, where
    # nothing seen can move, the box takes only what they need.
    box = f'<div data-related-slug="{SOURCE}" data-layout="cards"></div>'
    page.add_init_script(RESERVED)
    above = '<div id="spacer" style="height:2000px"></div>'
    with api_with(tmp_path, None) as api, box_page(page, api, box, above) as site:
        page.goto(site)
        reserved = reserved_height(page)
        # The box comes within 400 px of the viewport, and fills while still below it.
        page.evaluate(
            "window.scrollTo(0, document.getElementById('spacer').offsetHeight - innerHeight - 200)"
        )
        expect(page.locator(ITEMS)).to_have_count(4)
        filled = page.locator("[data-related-slug]")
        assert filled.evaluate("box => box.getBoundingClientRect().top") > page.evaluate(
            "innerHeight"
        )
        assert 0 < filled.bounding_box()["height"] < reserved - 50  # type: ignore[index]
        filled.scroll_into_view_if_needed()
        assert layout_shift(page) == 0.0


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

    @site.get("/fallback.svg")
    async def fallback() -> Response:
        return Response((DEMO_SITE / "fallback.svg").read_bytes(), media_type="image/svg+xml")

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
            # The corpus has no pictures: the card box shows the demo site's fallback picture.
            cards = page.locator("[data-layout=cards] img").evaluate_all(
                "images => images.map((i) => i.naturalWidth > 0 && i.src.endsWith('/fallback.svg'))"
            )
            assert cards == [True] * 4
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
