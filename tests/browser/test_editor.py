"""An editor in a real Chromium: logs in, finds an article, pins, blocks, undoes, tries a draft.

Each step is checked against the public API, which must change at once; screenshots of every
page go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from api.app import create_app
from tests.support.helpers import box_events, build_fake_index
from tests.support.servers import running_server

PASSWORD = "editors-password"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    settings, _ = build_fake_index(tmp_path / "data", editor_password=PASSWORD, redis_url=None)
    with running_server(create_app(settings)) as url:
        yield url


def related(server: str, slug: str) -> list[str]:
    response = httpx.get(f"{server}/v1/articles/{slug}/related", params={"limit": 5})
    assert response.status_code == 200
    return [item["slug"] for item in response.json()["items"]]


def test_an_editor_pins_blocks_and_undoes_in_the_browser(
    server: str, page: Page, artifacts: Path
) -> None:
    page.goto(f"{server}/editor/articles/volcano-0")
    expect(page).to_have_url(f"{server}/editor/login?next=%2Feditor%2Farticles%2Fvolcano-0")
    page.screenshot(path=str(artifacts / "editor-1-login.png"), full_page=True)
    page.get_by_label("Your name").fill("Ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server}/editor/articles/volcano-0")

    page.goto(f"{server}/editor")
    page.get_by_label("Title or slug").fill("volcano story")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Volcano story number 0")).to_be_visible()
    page.screenshot(path=str(artifacts / "editor-2-search.png"), full_page=True)
    page.get_by_role("link", name="Volcano story number 0").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Volcano story number 0")

    before = related(server, "volcano-0")
    shown = page.locator("#suggestions tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.slug)"
    )
    assert shown == before
    expect(page.get_by_test_id("index-version")).to_have_text(
        httpx.get(f"{server}/v1/articles/volcano-0").json()["index_version"]
    )
    page.screenshot(path=str(artifacts / "editor-3-article.png"), full_page=True)

    pin_form = page.locator("#pin-form")
    pin_form.get_by_label("Find by title").press_sequentially("zebra")
    expect(pin_form.locator("#pin-choices")).to_have_text("No article matches “zebra”.")
    pin_form.get_by_label("Find by title").fill("")
    pin_form.get_by_label("Find by title").press_sequentially("bitcoin story 1")
    choice = pin_form.locator('#pin-choices button[data-slug="bitcoin-1"]')
    expect(choice).to_contain_text("Bitcoin story number 1")
    page.screenshot(path=str(artifacts / "editor-3b-pin-search.png"), full_page=True)
    choice.click()
    expect(pin_form.get_by_label("Article slug")).to_have_value("bitcoin-1")
    pin_form.get_by_label("Slot").fill("1")
    pin_form.get_by_label("Reason (optional)").fill("explainer for newcomers")
    pin_form.get_by_role("button", name="Pin", exact=True).click()
    # A story about bitcoin scores low for a volcano: the desk asks before pinning it.
    expect(page.get_by_role("heading", level=1)).to_have_text("Pin an unrelated article?")
    assert related(server, "volcano-0")[0] != "bitcoin-1"
    page.screenshot(path=str(artifacts / "editor-3c-pin-confirm.png"), full_page=True)
    page.get_by_role("button", name="Pin it anyway").click()
    expect(page.get_by_role("status")).to_have_text("Pinned “Bitcoin story number 1” to slot 1.")
    assert related(server, "volcano-0")[0] == "bitcoin-1"
    expect(page.locator("#suggestions tbody tr").first).to_have_attribute("data-slug", "bitcoin-1")
    page.screenshot(path=str(artifacts / "editor-4-pinned.png"), full_page=True)

    victim = before[1]
    victim_title = httpx.get(f"{server}/v1/articles/{victim}").json()["title"]
    page.locator(f'#suggestions tr[data-slug="{victim}"]').get_by_role(
        "button", name="Block here"
    ).click()
    expect(page.get_by_role("status")).to_have_text(f"Blocked “{victim_title}” from this list.")
    assert victim not in related(server, "volcano-0")
    expect(page.locator("#audit tbody tr")).to_have_count(2)
    expect(page.locator("#audit tbody tr").first).to_contain_text("Ana")
    page.screenshot(path=str(artifacts / "editor-5-blocked.png"), full_page=True)

    page.locator("#audit tbody tr").first.get_by_role("button", name="Undo").click()
    undone = f"Undone: “{victim_title}” is no longer blocked."
    expect(page.get_by_role("status")).to_have_text(undone)
    assert victim in related(server, "volcano-0")
    expect(page.locator("#audit tbody tr").nth(1)).to_contain_text("undone by")
    page.screenshot(path=str(artifacts / "editor-6-undone.png"), full_page=True)

    # A block everywhere made here is among this list's changes, and on the site-wide page.
    hold = before[2]
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f'#suggestions tr[data-slug="{hold}"]').get_by_role(
        "button", name="Block everywhere"
    ).click()
    expect(page.get_by_role("status")).to_contain_text("everywhere.")
    expect(page.locator("#audit tbody tr")).to_have_count(4)
    expect(page.locator("#audit tbody tr").first).to_contain_text("block (everywhere)")
    page.get_by_role("navigation", name="Editor pages").get_by_role("link", name="Changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Changes to pins and blocks")
    expect(page.locator("#audit tbody tr")).to_have_count(4)
    page.get_by_label("What").select_option("block")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit tbody tr")).to_have_count(2)
    expect(page.locator("#audit tbody tr").first).to_contain_text("every list")
    page.screenshot(path=str(artifacts / "editor-6b-audit.png"), full_page=True)


def test_an_editor_sees_what_a_draft_would_be_related_to(
    server: str, page: Page, artifacts: Path
) -> None:
    page.goto(f"{server}/editor/draft")
    page.get_by_label("Your name").fill("Ben")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server}/editor/draft")
    page.get_by_label("Title").fill("Wildfire blaze forces evacuation")
    page.get_by_label("Text").fill("firefighters fight the wildfire blaze smoke acres drought")
    page.get_by_role("button", name="Find related articles").click()
    results = page.locator("#draft-results li a")
    expect(results).to_have_count(5)
    expect(page.locator("#draft-results li .hint").first).to_have_attribute(
        "title", re.compile("^The ranking score: semantic similarity")
    )
    titles = results.all_inner_texts()
    assert titles[0].startswith("Wildfire story")
    page.screenshot(path=str(artifacts / "editor-7-draft.png"), full_page=True)


def overflows(page: Page) -> bool:
    return bool(
        page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
    )


def test_the_desk_fits_a_phone(server: str, browser: Browser, artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"{server}/editor/status")
        page.get_by_label("Your name").fill("Cleo")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Status")
        assert not overflows(page)
        page.screenshot(path=str(artifacts / "editor-phone-status.png"), full_page=True)
        pages = (("search", "/editor"), ("audit", "/editor/audit"))
        for name, path in (*pages, ("article", "/editor/articles/volcano-0")):
            page.goto(f"{server}{path}")
            assert not overflows(page), name
            page.screenshot(path=str(artifacts / f"editor-phone-{name}.png"), full_page=True)
        fields = page.locator("#pin-form label").evaluate_all(
            "labels => labels.map((l) => { const r = l.getBoundingClientRect();"
            " return [r.left, r.top, r.right, r.bottom]; })"
        )
        for i, (left, top, right, bottom) in enumerate(fields):
            assert right <= 390
            for other_left, other_top, other_right, other_bottom in fields[i + 1 :]:
                apart = (
                    right <= other_left
                    or other_right <= left
                    or bottom <= other_top
                    or other_bottom <= top
                )
                assert apart, "two fields of the pin form overlap"
    finally:
        context.close()


def test_the_status_page_lists_the_busiest_boxes(server: str, page: Page, artifacts: Path) -> None:
    with httpx.Client(base_url=server) as client:
        events = box_events(client, "wildfire-0", limit=1)
        impression = events[0]["impression"]
        events += box_events(client, "wildfire-0", "click", limit=1, impression=impression)
        assert client.post("/v1/events", json={"events": events}).json()["accepted"] == 2
    page.goto(f"{server}/editor/status")
    page.get_by_label("Your name").fill("Dan")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    row = page.locator("#busiest tbody tr").first
    expect(row).to_contain_text("Wildfire story number 0")
    expect(row).to_contain_text("100.0 %")
    page.screenshot(path=str(artifacts / "editor-status.png"), full_page=True)
