"""An editor in a real Chromium: logs in, finds an article, pins, blocks, undoes, tries a draft.

Each step is checked against the public API, which must change at once; screenshots of every
page go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from api.app import create_app
from tests.support.helpers import build_fake_index
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
    pin_form.get_by_label("Article slug").fill("bitcoin-1")
    pin_form.get_by_label("Slot").fill("1")
    pin_form.get_by_label("Reason (optional)").fill("explainer for newcomers")
    pin_form.get_by_role("button", name="Pin").click()
    expect(page.get_by_role("status")).to_contain_text("Pinned bitcoin-1 to slot 1")
    assert related(server, "volcano-0")[0] == "bitcoin-1"
    expect(page.locator("#suggestions tbody tr").first).to_have_attribute("data-slug", "bitcoin-1")
    page.screenshot(path=str(artifacts / "editor-4-pinned.png"), full_page=True)

    victim = before[1]
    page.locator(f'#suggestions tr[data-slug="{victim}"]').get_by_role(
        "button", name="Block here"
    ).click()
    expect(page.get_by_role("status")).to_contain_text(f"Blocked {victim}")
    assert victim not in related(server, "volcano-0")
    expect(page.locator("#audit tbody tr")).to_have_count(2)
    expect(page.locator("#audit tbody tr").first).to_contain_text("Ana")
    page.screenshot(path=str(artifacts / "editor-5-blocked.png"), full_page=True)

    page.locator("#audit tbody tr").first.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status")).to_contain_text("Undone")
    assert victim in related(server, "volcano-0")
    expect(page.locator("#audit tbody tr").nth(1)).to_contain_text("undone by")
    page.screenshot(path=str(artifacts / "editor-6-undone.png"), full_page=True)


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
    titles = results.all_inner_texts()
    assert titles[0].startswith("Wildfire story")
    page.screenshot(path=str(artifacts / "editor-7-draft.png"), full_page=True)
