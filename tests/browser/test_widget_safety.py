"""The widget never holds up or scars a publisher's page, even when the API hangs.

"Hangs" is a real TCP server that accepts every connection and never answers (a refused
connection is the easy case: `test_widget.py`). Pages use the snippet docs/widget.md recommends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_widget import ITEMS, SOURCE, recommended_head, serve_page
from tests.browser.test_widget_layouts import VIEWPORTS, api_with
from tests.support.hanging_server import HangingServer
from tests.support.helpers import wait_for

#: The widget's default request timeout, and the snippet's CSS delay (milliseconds).
TIMEOUT_MS = 3000
#: How late after it the box may go and still count as "within the timeout": a loaded machine.
MARGIN_MS = 5000
#: When the page's events fired (performance.now()), and how tall the box was at each.
EVENTS = """
window.fired = {};
for (const [target, type] of [[document, "DOMContentLoaded"], [window, "load"]]) {
  target.addEventListener(type, () => {
    const box = document.querySelector("[data-related-slug]");
    window.fired[type] = [performance.now(), box ? box.getBoundingClientRect().height : null];
  });
}
"""
GONE = (
    "(selector) => { const box = document.querySelector(selector);"
    " return (!box || box.getBoundingClientRect().height === 0) && performance.now(); }"
)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    with api_with(tmp_path, None) as base:
        yield base


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    with HangingServer() as server:
        yield server


def gone_at(page: Page, selector: str = "[data-related-slug]") -> float:
    """When (performance.now(), ms) the box was removed or collapsed to nothing."""
    gone = page.wait_for_function(GONE, arg=selector, timeout=TIMEOUT_MS + MARGIN_MS)
    moment: float = gone.json_value()
    return moment


def test_a_new_visitor_s_page_completes_and_the_box_goes_when_the_script_hangs(
    page: Page, hanging: HangingServer, artifacts: Path
) -> None:
    page.add_init_script(EVENTS)
    box = f'<div data-related-slug="{SOURCE}" data-layout="cards"></div>'
    with serve_page(recommended_head(hanging.url), box) as site:
        # The whole page, `load` included, although widget.js never comes.
        page.goto(site, wait_until="load", timeout=TIMEOUT_MS + MARGIN_MS)
        wait_for(lambda: hanging.accepted >= 1, "widget.js asked for")  # and hanging
        assert page.locator("#after").is_visible()
        reserved = page.evaluate("window.fired.DOMContentLoaded[1]")
        assert reserved > 200  # the box's place kept from the first paint
        assert TIMEOUT_MS <= gone_at(page) < TIMEOUT_MS + MARGIN_MS
        assert page.locator("#after").bounding_box()["y"] < 200  # type: ignore[index]
        page.screenshot(path=artifacts / "widget-script-hangs.png", full_page=True)


def test_with_the_script_in_hand_a_hung_request_removes_its_box_but_not_a_lazy_one(
    api: str, page: Page, hanging: HangingServer
) -> None:
    page.add_init_script(EVENTS)
    boxes = (
        f'<div data-related-slug="{SOURCE}" data-api="{hanging.url}"></div>'
        '<div style="height:3000px"></div>'
        '<div id="far" data-related-slug="bitcoin-0" data-limit="2"></div>'
    )
    with serve_page(recommended_head(api), boxes) as site:
        page.goto(site, wait_until="load")
        hung = f'[data-api="{hanging.url}"]'
        near = page.locator(hung)
        expect(near).to_have_attribute("data-related-state", "loading")
        assert gone_at(page, hung) < page.evaluate("window.fired.load[0]") + TIMEOUT_MS + MARGIN_MS
        expect(near).to_have_count(0)
        wait_for(lambda: hanging.accepted >= 1, "the list asked for")
        # Far below, the other box waited longer than the snippet's 3 s, reserved all along.
        far = page.locator("#far")
        assert far.get_attribute("data-related-state") == "loading"
        assert far.bounding_box()["height"] > 100  # type: ignore[index]
        far.scroll_into_view_if_needed()
        expect(far.locator(ITEMS)).to_have_count(2)


@pytest.mark.parametrize("viewport", ["wide", "phone"])
@pytest.mark.parametrize("layout", ["cards", "list"])
def test_the_snippet_reserves_what_the_script_reserves(
    api: str, browser: Browser, hanging: HangingServer, viewport: str, layout: str
) -> None:
    """Before the script: the snippet's style; after: the script's own. The same height."""
    context = browser.new_context(viewport=VIEWPORTS[viewport])  # type: ignore[arg-type]
    page = context.new_page()
    page.add_init_script(EVENTS)
    box = f'<div data-related-slug="{SOURCE}" data-layout="{layout}" data-timeout="60000"'
    try:
        # The snippet alone: widget.js hangs.
        with serve_page(recommended_head(hanging.url), f"{box}></div>") as site:
            page.goto(site, wait_until="load")
            by_snippet = page.evaluate("window.fired.DOMContentLoaded[1]")
        # The script alone (no snippet), its request for the list hanging.
        script = f'<script src="{api}/widget.js"></script>'
        with serve_page(script, f'{box} data-api="{hanging.url}"></div>') as site:
            page.goto(site)
            filled = page.locator("[data-related-slug]")
            expect(filled).to_have_attribute("data-related-state", "loading")
            by_script = filled.bounding_box()["height"]  # type: ignore[index]
    finally:
        context.close()
    assert by_snippet > 200
    assert by_snippet == by_script


def test_data_timeout_sets_how_long_a_box_waits(
    api: str, page: Page, hanging: HangingServer
) -> None:
    # Both requests go out at once; one box waits 1 s, one 3 s. Options may sit on an element
    # around the boxes (here both the API, which hangs, and the shorter timeout).
    boxes = (
        f'<div data-api="{hanging.url}"><div data-timeout="1000">'
        f'<div id="short" data-related-slug="{SOURCE}"></div></div>'
        f'<div id="long" data-related-slug="{SOURCE}"></div></div>'
    )
    with serve_page(recommended_head(api), boxes) as site:
        page.goto(site)
        short, long = gone_at(page, "#short"), gone_at(page, "#long")
    assert long >= TIMEOUT_MS
    assert short < long - 1000  # 1 s against 3 s, from the same moment
