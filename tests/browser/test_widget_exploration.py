"""The exploring widget in Debian's Chromium: widget.js draws exactly what the service's
`api.serving.exploration_draw` draws for the same impression ids, and a real page's exploring
boxes are counted and logged with exact propensities."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.sync_api import Page, Route, expect

from api.app import create_app
from api.event_log.file_event_log import FileEventLog
from api.serving.exploration_draw import SHARE_STEPS, ExplorationPlan, draw, shown_at
from api.templating import STATIC
from recommender.settings import Settings
from tests.support.helpers import build_fake_index, synthetic_records, wait_for
from tests.support.servers import running_server
from tests.support.widget_beacons import record_events

SITE = "http://gazette.test"
#: Plans of the boxes of the agreement page: (share, shown, reserves, pinned slots).
PLANS = [
    (500, 4, 3, ()),
    (5_000, 4, 3, ()),
    (SHARE_STEPS, 4, 3, (2,)),
    (SHARE_STEPS, 5, 2, (1, 4)),
    (7_500, 3, 1, ()),
]
BOXES = 3_000
#: The widget's ids come from `crypto.getRandomValues`: replaced by a fixed sequence, and each
#: id the widget makes of it is recorded, in the order of the boxes.
FIXED_IDS = """
let call = 0;
window.__ids = [];
crypto.getRandomValues = (array) => {
  call++;
  for (let i = 0; i < array.length; i++) array[i] = (call * 2654435761 + i * 40503) >>> (i % 24);
  const id = Array.from(array, (b) => b.toString(16).padStart(2, "0")).join("");
  window.__ids.push(id);
  return array;
};
"""


def agreement_box(number: int, plan: tuple[int, int, int, tuple[int, ...]]) -> str:
    share, shown, reserves, pinned = plan
    items = "".join(
        f'<li class="related-articles-item" data-slot="{slot}" data-slug="item-{slot}">'
        f'<a class="related-articles-link" href="/read/item-{slot}">Item {slot}</a></li>'
        for slot in range(1, shown + 1)
    )
    spare = "".join(
        f'<li class="related-articles-item" data-slug="reserve-{r}">'
        f'<a class="related-articles-link" href="/read/reserve-{r}">Reserve {r}</a></li>'
        for r in range(1, reserves + 1)
    )
    return (
        f'<section class="related-articles" data-related-source="box-{number}" '
        f'data-feedback-token="t" data-feedback-arm="default" '
        f'data-feedback-exploration="{share / SHARE_STEPS}" '
        f'data-feedback-pinned="{" ".join(map(str, pinned))}">'
        f'<ol class="related-articles-list">{items}</ol>'
        f'<template class="related-articles-reserves">{spare}</template></section>'
    )


def fixed_id_page(page: Page, body: str, boxes: int) -> list[str]:
    """Open a page of `body` with widget.js drawing from `FIXED_IDS`; once its `boxes` are
    tracked, the impression ids the widget made, in the order of the boxes."""
    html = (
        '<!doctype html><html><head><meta charset="utf-8"></head><body>'
        f'{body}<script src="{SITE}/widget.js"></script></body></html>'
    )

    def serve(route: Route) -> None:
        if route.request.url.endswith("/widget.js"):
            route.fulfill(body=(STATIC / "widget.js").read_text(), content_type="text/javascript")
        elif route.request.url.endswith("/v1/events"):
            route.fulfill(status=202, body="{}")
        else:
            route.fulfill(body=html, content_type="text/html")

    page.add_init_script(FIXED_IDS)
    page.route(f"{SITE}/**", serve)
    page.goto(f"{SITE}/")
    expect(page.locator("section[data-related-tracked]")).to_have_count(boxes)
    ids: list[str] = page.evaluate("window.__ids")
    return ids


def test_the_widget_draws_what_the_service_draws(page: Page) -> None:
    plans = [PLANS[number % len(PLANS)] for number in range(BOXES)]
    body = "".join(agreement_box(number, plan) for number, plan in enumerate(plans))
    ids = fixed_id_page(page, body, BOXES)
    shown: list[list[str]] = page.evaluate(
        "[...document.querySelectorAll('section[data-related-source]')].map((box) => "
        "[...box.querySelectorAll('ol > li')].map((li) => `${li.dataset.slot}:${li.dataset.slug}`))"
    )
    assert len(ids) == BOXES and len(set(ids)) == BOXES
    explored = 0
    kinds = set()
    for impression, (share, slots, reserves, pinned), box in zip(ids, plans, shown, strict=True):
        plan = ExplorationPlan(share, slots, reserves, frozenset(pinned))
        entries = [f"item-{s}" for s in range(1, slots + 1)] + [
            f"reserve-{r}" for r in range(1, reserves + 1)
        ]
        expected = []
        for slot in range(1, slots + 1):
            at = shown_at(plan, impression, slot)
            assert at is not None
            expected.append(f"{slot}:{entries[at.entry - 1]}")
        swap = draw(plan, impression)
        if swap is not None:
            explored += 1
            kinds.add("exchange" if swap.entry <= slots else "reserve")
        assert box == expected, impression
    assert BOXES * 0.5 < explored < BOXES  # both branches, on every kind of plan
    assert kinds == {"exchange", "reserve"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Every box explores (share 1), so each page view shows one reserve."""
    records = [{**record, "url": f"/read/{record['slug']}"} for record in synthetic_records()]
    built, _ = build_fake_index(tmp_path / "data", records, redis_url=None, exploration=1.0)
    return built


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    with running_server(create_app(settings)) as base:
        yield base


def test_an_exploring_box_is_counted_and_logged_with_exact_propensities(
    api: str, page: Page, settings: Settings
) -> None:
    box = '<div data-related-slug="volcano-0" data-limit="4"></div>'
    script = f'<script src="{api}/widget.js" async></script>'
    html = f"<!doctype html><html><body>{box}{script}</body></html>"
    sent = record_events(page, api)
    listed = httpx.get(
        f"{api}/v1/articles/volcano-0/related", params={"limit": 4, "explore": "true"}
    ).json()
    items = [item["slug"] for item in listed["items"]]
    reserves = [item["slug"] for item in listed["reserves"]]
    site = FastAPI()
    site.get("/", response_class=HTMLResponse)(lambda: html)
    log = FileEventLog(settings.data_dir)
    today = datetime.now(UTC).date()
    with running_server(site) as publisher:  # a loopback origin, which may call the API's
        page.goto(publisher)
        links = page.locator("li.related-articles-item[data-slot] a")
        expect(links).to_have_count(4)
        shown = links.evaluate_all("links => links.map((a) => a.closest('li').dataset.slug)")
        swapped = [n for n, (a, b) in enumerate(zip(shown, items, strict=True), start=1) if a != b]
        # One slot took a reserve, or two slots traded their items.
        exchanged = len(swapped) == 2 and sorted(shown) == sorted(items)
        assert exchanged or (len(swapped) == 1 and shown[swapped[0] - 1] in reserves), shown
        wait_for(lambda: len(list(log.read(today, today))) >= 4, "4 impressions logged")
        links.nth(swapped[0] - 1).click()
        wait_for(lambda: len(list(log.read(today, today))) >= 5, "the click logged")
    logged = {(e.type, e.position): e for e in log.read(today, today)}
    assert {(kind, e.target) for (kind, _), e in logged.items()} == {
        *(("impression", slug) for slug in shown),
        ("click", shown[swapped[0] - 1]),
    }
    for slot in range(1, 5):
        propensity = logged["impression", slot].propensity
        # Share 1, 4 free slots, 3 reserves: 4 x 6 equally likely (slot, partner) draws; a
        # reserve at a slot 1/24, another slot's item 2/24 (drawn from either side), an item
        # kept 1 - 1/4 - 3/24.
        moved = 2 / 24 if exchanged else 1 / 24
        assert propensity == pytest.approx(moved if slot in swapped else 1 - 1 / 4 - 3 / 24)
    assert len(sent) == 5 and {event["token"] for event in sent} == {listed["feedback"]["token"]}
