"""The widget picks an experiment's arm in Debian's Chromium exactly as the service draws it
(`api.serving.experiment_arms`): for the same impression ids, the box shows (and reports) the
list of the arm whose draws hold `arm_draw(id)`."""

from __future__ import annotations

from playwright.sync_api import Page

from api.serving.exploration_draw import SHARE_STEPS, arm_draw
from tests.browser.test_widget_exploration import fixed_id_page

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
