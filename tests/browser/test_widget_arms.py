"""The widget picks an experiment's arm in Debian's Chromium exactly as the service draws it
(`api.serving.experiment_arms`): for the same impression ids, the box shows (and reports) the
list of the arm whose draws hold `arm_draw(id)`; on a real page with a real experiment, every
box's events are accepted and logged under the arm its id draws."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.sync_api import Page, expect

from api.app import create_app
from api.event_log.file_event_log import FileEventLog
from api.serving.experiment_arms import experiment_of
from api.serving.exploration_draw import SHARE_STEPS, arm_draw
from api.serving.feedback_tokens import token_header
from index.state.experiment_store import StoredExperiment
from recommender.settings import Settings
from tests.browser.test_widget_exploration import FIXED_IDS, fixed_id_page
from tests.support.helpers import ADMIN_TOKEN, build_fake_index, wait_for
from tests.support.servers import running_server
from tests.support.widget_beacons import record_events

#: Shares of the boxes' arms (holdout first), in steps of 1/`SHARE_STEPS`.
SPLITS = [(5_000, 5_000), (7_000, 3_000), (500, 9_500), (2_500, 2_500, 5_000), (9_000, 500, 500)]
BOXES = 3_000


def arm_section(number: int, arm: int, share: int, inner: str = "") -> str:
    items = "".join(
        f'<li class="related-articles-item" data-slot="{slot}" data-slug="arm{arm}-item-{slot}">'
        f'<a class="related-articles-link" href="/read/{slot}">Item {slot}</a></li>'
        for slot in (1, 2)
    )
    return (
        f'<section class="related-articles" data-related-source="box-{number}" '
        f'data-feedback-token="token-{arm}" data-feedback-arm="arm{arm}" '
        f'data-feedback-share="{share / SHARE_STEPS}">'
        f'<ol class="related-articles-list">{items}</ol>{inner}</section>'
    )


def experiment_box(number: int, shares: tuple[int, ...]) -> str:
    others = "".join(arm_section(number, arm, share) for arm, share in enumerate(shares) if arm)
    inner = f'<template class="related-articles-arms">{others}</template>'
    return arm_section(number, 0, shares[0], inner)


def expected_arm(impression: str, shares: tuple[int, ...]) -> str:
    drawn, start = arm_draw(impression), 0
    for arm, share in enumerate(shares):
        if start <= drawn < start + share:
            return f"arm{arm}"
        start += share
    raise AssertionError("the shares do not sum to 1")


def test_the_widget_picks_the_arm_the_service_draws(page: Page) -> None:
    splits = [SPLITS[number % len(SPLITS)] for number in range(BOXES)]
    body = "".join(experiment_box(number, shares) for number, shares in enumerate(splits))
    ids = fixed_id_page(page, body, BOXES)
    shown: list[list[str]] = page.evaluate(
        "[...document.querySelectorAll('section[data-related-tracked]')].map((box) => "
        "[box.dataset.feedbackArm, "
        "...[...box.querySelectorAll('ol > li')].map((li) => li.dataset.slug)])"
    )
    assert len(ids) == BOXES == len(shown)
    picked = set()
    for impression, shares, (arm, *slugs) in zip(ids, splits, shown, strict=True):
        expected = expected_arm(impression, shares)
        assert arm == expected, impression
        assert slugs == [f"{expected}-item-1", f"{expected}-item-2"]
        picked.add((shares, arm))
    # Every arm of every split was picked by some id, the first and the others alike.
    assert len(picked) == sum(len(shares) for shares in SPLITS)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    built, _ = build_fake_index(
        tmp_path / "data", redis_url=None, exploration=0.0, admin_token=ADMIN_TOKEN
    )
    return built


EXPERIMENT = [
    {"name": "holdout", "share": 0.5},
    {"name": "wide", "share": 0.5, "settings": {"diversity": 0.8, "exploration": 1.0}},
]
SOURCES = ["volcano-0", "election-1", "football-2", "vaccine-0", "volcano-2", "election-0"]


def test_real_boxes_show_and_report_the_arm_their_ids_draw(page: Page, settings: Settings) -> None:
    boxes = "".join(f'<div data-related-slug="{slug}" data-limit="3"></div>' for slug in SOURCES)
    log = FileEventLog(settings.data_dir)
    today = datetime.now(UTC).date()
    with running_server(create_app(settings)) as api:
        response = httpx.put(
            f"{api}/v1/admin/experiment",
            json={"arms": EXPERIMENT},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert response.status_code == 200, response.text
        script = f'<script src="{api}/widget.js"></script>'
        html = f"<!doctype html><html><body>{boxes}{script}</body></html>"
        site = FastAPI()
        site.get("/", response_class=HTMLResponse)(lambda: html)
        sent = record_events(page, api)
        with running_server(site) as publisher:
            page.set_viewport_size({"width": 1200, "height": 4000})  # every box in view
            page.add_init_script(FIXED_IDS)  # the same ids on every run: both arms are shown
            page.goto(publisher)
            expect(page.locator("section[data-related-tracked]")).to_have_count(len(SOURCES))
            wait_for(lambda: len(list(log.read(today, today))) >= 3 * len(SOURCES), "every box")
        shown = page.locator("section[data-related-tracked]").evaluate_all(
            "boxes => boxes.map((box) => box.dataset.feedbackArm)"
        )
    experiment = experiment_of(StoredExperiment(1, EXPERIMENT), settings)
    assert experiment is not None
    assert len(sent) == 3 * len(SOURCES)
    by_box = {event["impression"]: event for event in sent}
    assert len(by_box) == len(SOURCES)
    for impression, event in by_box.items():
        header = token_header(event["token"])
        assert header is not None and header.arm == experiment.arm_of(impression).name
    assert sorted(shown) == sorted(experiment.arm_of(i).name for i in by_box)
    assert set(shown) == {"holdout", "wide"}
    logged = list(log.read(today, today))
    assert len(logged) == 3 * len(SOURCES)
    assert all(e.arm == experiment.arm_of(e.impression).name for e in logged)
