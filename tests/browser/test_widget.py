"""The widget in Debian's Chromium, on a publisher's page served from another loopback origin.

The API (a real index built with the hashing encoder) runs on one port; a tiny publisher site
that embeds `<script src="{api}/widget.js">` runs on another, so every call of the widget is
cross-origin, as on a real news site.
"""

from __future__ import annotations

import html
import re
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.sync_api import Page, expect

from api.app import create_app
from api.event_log.file_event_log import FileEventLog
from recommender.settings import Settings
from tests.support.helpers import (
    REPO,
    build_fake_index,
    cache_options,
    synthetic_records,
    wait_for,
)
from tests.support.servers import running_server
from tests.support.widget_beacons import record_events

TOKEN = "s3cret-admin-token"
SOURCE = "volcano-0"
ITEMS = "li.related-articles-item"
ACCENT = "rgb(0, 102, 51)"
DAYS_AGO = re.compile(r"^\d+ days ago$")


def widget_records() -> list[dict[str, Any]]:
    """The synthetic corpus with links on the publisher's site and dates a few days back."""
    now = datetime.now(UTC)
    records = []
    for record in synthetic_records():
        number = int(record["slug"].rsplit("-", 1)[1])
        published = now - timedelta(days=2 + number, hours=1)
        records.append(
            {**record, "url": f"/read/{record['slug']}", "published_at": published.isoformat()}
        )
    return records


def days_ago(published_at: str) -> str:
    age = datetime.now(UTC) - datetime.fromisoformat(published_at)
    return f"{round(age / timedelta(days=1))} days ago"


def publisher_page(head: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>The Gazette</title>'
        f'{head}</head><body style="margin:0;font:16px/1.5 sans-serif;--related-accent:{ACCENT}">'
        f"<h1>Volcano erupts again</h1><p>The story so far.</p>{body}"
        '<p id="after">The story continues below the box.</p></body></html>'
    )


def publisher(page: Callable[[], str]) -> FastAPI:
    """A publisher's site: an article page (`page()` at each request) and pages it links to."""
    site = FastAPI()

    @site.get("/", response_class=HTMLResponse)
    async def article() -> str:
        return page()

    @site.get("/read/{slug}", response_class=HTMLResponse)
    async def read(slug: str) -> str:
        return publisher_page("", f"<h2>{html.escape(slug)}</h2>")

    return site


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    options = cache_options(request)
    if request.param == "redis":
        options["events_namespace"] = options["cache_namespace"] + "events:"
    # Boxes show the ranked list exactly (exploring boxes: test_widget_exploration.py).
    built, _ = build_fake_index(
        tmp_path / "data", widget_records(), admin_token=TOKEN, exploration=0, **options
    )
    return built


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    with running_server(create_app(settings)) as base:
        yield base


def recommended_head(api: str) -> str:
    """What docs/widget.md tells publishers to put in `<head>`, pointed at `api`.

    The snippet's first `html` block, up to its box: the tests load pages the way the docs
    say, so the docs cannot recommend what the tests do not show.
    """
    docs = (REPO / "docs" / "widget.md").read_text(encoding="utf-8")
    drop_in = docs[docs.index("**Drop-in script.**") :]
    block = drop_in[drop_in.index("```html\n") + len("```html\n") :]
    head = block[: block.index("<div data-related-slug")]
    return head.replace("https://related.example.com", api)


def serve_page(head: str, body: str) -> Any:
    return running_server(publisher(lambda: publisher_page(head, body)))


def ctr(api: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The CTR report of SOURCE once `until` holds (beacons land a moment after they are sent)."""
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(
            f"{api}/v1/stats/ctr",
            params={"slug": SOURCE},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        report: dict[str, Any] = response.raise_for_status().json()
        if until(report) or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


def test_cards_match_the_api_and_clicks_are_counted(
    api: str, page: Page, artifacts: Path, settings: Settings
) -> None:
    backend = "redis" if settings.redis.url else "memory"
    box = f'<div data-related-slug="{SOURCE}" data-limit="4" data-heading="Read next"></div>'
    sent = record_events(page, api)
    with serve_page(f'<script src="{api}/widget.js" async></script>', box) as site:
        assert site.split(":")[-1] != api.split(":")[-1]  # two origins
        page.goto(site)
        region = page.get_by_role("region", name="Read next")
        expect(region.locator(ITEMS)).to_have_count(4)

        expected = httpx.get(f"{api}/v1/articles/{SOURCE}/related", params={"limit": 4}).json()
        items = expected["items"]
        links = region.get_by_role("link")
        assert links.all_inner_texts() == [item["title"] for item in items]
        assert [links.nth(i).get_attribute("href") for i in range(4)] == [i["url"] for i in items]
        sections = region.locator(".related-articles-section").all_inner_texts()
        assert sections == [item["section"] for item in items]
        dates = region.locator("time")
        assert dates.all_inner_texts() == [days_ago(item["published_at"]) for item in items]
        assert dates.first.get_attribute("datetime") == items[0]["published_at"]
        assert links.first.evaluate("link => getComputedStyle(link).color") == ACCENT

        shown = ctr(api, lambda report: report["totals"]["impressions"] >= 4)
        assert [(row["slot"], row["impressions"]) for row in shown["by_slot"]] == [
            (1, 1),
            (2, 1),
            (3, 1),
            (4, 1),
        ]
        page.screenshot(path=artifacts / f"widget-{backend}.png", full_page=True)

        target = items[1]["slug"]
        links.nth(1).click()
        page.wait_for_url(f"{site}/read/{target}")
        report = ctr(api, lambda report: report["totals"]["clicks"] >= 1)
    assert report["totals"] == {"impressions": 4, "clicks": 1, "ctr": 0.25}
    assert report["by_slot"][1] == {"slot": 2, "impressions": 1, "clicks": 1, "ctr": 1.0}
    assert report["by_target"][0] == {"target": target, "impressions": 1, "clicks": 1, "ctr": 1.0}
    assert sorted(row["target"] for row in report["by_target"]) == sorted(i["slug"] for i in items)
    assert set(report["refused"].values()) == {0}
    # Every event carries the list's token and the one impression id drawn for the box.
    assert [(e["type"], e["slot"]) for e in sent] == [*(("impression", n) for n in range(1, 5)),
                                                      ("click", 2)]  # fmt: skip
    assert {event["token"] for event in sent} == {expected["feedback"]["token"]}
    assert len({event["impression"] for event in sent}) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", sent[0]["impression"])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("failure", ["api-down", "unknown-article"])
@pytest.mark.parametrize("settings", ["memory"], indirect=True)
def test_the_box_renders_nothing_when_the_api_fails(
    api: str, page: Page, artifacts: Path, failure: str
) -> None:
    if failure == "api-down":
        box = f'<div data-related-slug="{SOURCE}" data-api="http://127.0.0.1:{closed_port()}">'
    else:
        box = '<div data-related-slug="no-such-article">'
    with serve_page(f'<script src="{api}/widget.js" async></script>', box + "</div>") as site:
        page.goto(site)
        expect(page.locator("[data-related-slug]")).to_have_count(0)
        assert page.locator("h2").count() == 0
        assert page.locator("#after").is_visible()
        page.screenshot(path=artifacts / f"widget-{failure}.png", full_page=True)


@pytest.mark.parametrize("settings", ["memory"], indirect=True)
def test_the_box_height_is_reserved_before_the_suggestions_arrive(api: str, page: Page) -> None:
    # In <head>, without async: the box is reserved from the first paint.
    head = (
        f'<script src="{api}/widget.js"></script><script>document.addEventListener('
        '"DOMContentLoaded", () => { window.before = [document.getElementById("after")'
        ".getBoundingClientRect().top, document.querySelector('[data-related-slug]')"
        ".getBoundingClientRect().height] })</script>"
    )
    box = f'<div data-related-slug="{SOURCE}" data-limit="3"></div>'
    with serve_page(head, box) as site:
        page.goto(site)
        expect(page.locator(ITEMS)).to_have_count(3)
        after_top, reserved = page.evaluate("window.before")
        assert reserved > 100  # empty while loading, but as tall as three suggestions
        assert page.locator("#after").bounding_box()["y"] == after_top  # type: ignore[index]


@pytest.mark.parametrize("settings", ["memory"], indirect=True)
def test_boxes_load_only_near_the_viewport(api: str, page: Page, artifacts: Path) -> None:
    boxes = (
        f'<div data-related-slug="{SOURCE}" data-limit="2"></div>'
        '<div style="height:3000px"></div>'
        '<div id="far" data-related-slug="bitcoin-0" data-limit="2"></div>'
    )
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    with serve_page(f'<script src="{api}/widget.js" async></script>', boxes) as site:
        page.goto(site)
        expect(page.locator(f'[data-related-slug="{SOURCE}"] {ITEMS}')).to_have_count(2)
        assert not [url for url in requested if "/bitcoin-0/" in url]
        page.locator("#far").scroll_into_view_if_needed()
        expect(page.locator(f"#far {ITEMS}")).to_have_count(2)
        assert [url for url in requested if "/bitcoin-0/related.html" in url]
        page.screenshot(path=artifacts / "widget-lazy.png")


@pytest.mark.parametrize("settings", ["memory"], indirect=True)
def test_server_included_fragments_are_tracked_too(api: str, page: Page) -> None:
    """As an ESI/SSI include would: the publisher's server puts the fragment in its page."""
    fragment = httpx.get(f"{api}/v1/articles/{SOURCE}/related.html", params={"limit": 3}).text
    script = f'<script src="{api}/widget.js" async></script>'
    with serve_page(script, fragment) as site:
        page.goto(site)
        expect(page.locator("time").first).to_have_text(DAYS_AGO)
        report = ctr(api, lambda report: report["totals"]["impressions"] >= 3)
    assert [row["impressions"] for row in report["by_slot"]] == [1, 1, 1]


@pytest.mark.parametrize("settings", ["memory"], indirect=True)
def test_a_box_placement_reaches_the_impression_log(
    api: str, page: Page, settings: Settings
) -> None:
    box = f'<div data-related-slug="{SOURCE}" data-limit="3" data-placement="article-end"></div>'
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    log = FileEventLog(settings.data_dir)
    today = datetime.now(UTC).date()
    with serve_page(f'<script src="{api}/widget.js" async></script>', box) as site:
        page.goto(site)
        expect(page.locator(ITEMS)).to_have_count(3)
        section = page.locator("section[data-related-source]")
        expect(section).to_have_attribute("data-feedback-placement", "article-end")
        wait_for(lambda: len(list(log.read(today, today))) >= 3, "3 impressions logged")
    assert [url for url in requested if "related.html" in url and "placement=article-end" in url]
    logged = list(log.read(today, today))
    assert [(e.type, e.position, e.placement) for e in logged] == [
        ("impression", slot, "article-end") for slot in (1, 2, 3)
    ]


#: Ages (days) either side of each unit's edge, and how a box must say them: one style.
AGES = {
    1.05: "1 day ago",
    6.6: "6 days ago",
    7.3: "1 week ago",
    13.9: "1 week ago",
    20: "2 weeks ago",
    45: "1 month ago",
    400: "1 year ago",
}


def test_every_date_of_a_box_is_in_one_style(tmp_path: Path, page: Page) -> None:
    """Whole units counted down, never "yesterday" or "last week" beside "7 days ago"."""
    now = datetime.now(UTC)
    ages = list(AGES)
    records = [
        {**record, "published_at": (now - timedelta(days=ages[i % len(ages)])).isoformat()}
        for i, record in enumerate(synthetic_records())
    ]
    expected = {r["slug"]: AGES[ages[i % len(ages)]] for i, r in enumerate(records)}
    built, _ = build_fake_index(tmp_path / "data", records, redis_url=None)
    box = f'<div data-related-slug="{SOURCE}" data-limit="12"></div>'
    with (
        running_server(create_app(built)) as api,
        serve_page(f'<script src="{api}/widget.js" async></script>', box) as site,
    ):
        page.goto(site)
        expect(page.locator(ITEMS)).to_have_count(12)
        shown = page.locator(ITEMS).evaluate_all(
            "items => items.map((i) => [i.dataset.slug, i.querySelector('time').textContent])"
        )
    assert {text for _, text in shown} >= {"1 day ago", "6 days ago", "1 week ago"}
    assert {slug: text for slug, text in shown} == {slug: expected[slug] for slug, _ in shown}
