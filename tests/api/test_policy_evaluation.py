"""Off-policy evaluation over the impression log's records: boxes grouped back from their items
and clicks, rankings compared slot by slot, refusal without support, and candidates ranked by
the served index's own code path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from api.cli.policy_commands import MIN_SUPPORT, candidate_settings
from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import LoggedEvent
from api.event_log.policy_evaluation import (
    LoggedBox,
    Ranking,
    clicks_before,
    evaluate_policies,
    logged_boxes,
    reranked,
    served_ranking,
)
from index.serving.version_loader import load_recommender
from recommender.errors import ArticleNotFound, LogLacksSupport
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from tests.support.helpers import build_fake_index

AT = 1_765_000_000.0


def event(
    kind: str, impression: str, position: int, target: str, propensity: float | None = 1.0
) -> LoggedEvent:
    return LoggedEvent(
        type=kind,  # type: ignore[arg-type]
        at=AT + position,
        source="a",
        impression=impression,
        position=position,
        target=target,
        placement="default" if impression != "other" else "sidebar",
        arm="default",
        version="v1",
        propensity=propensity if kind == "impression" else None,
    )


def test_boxes_are_grouped_back_with_their_clicks_and_stray_clicks_dropped() -> None:
    events = [
        event("impression", "one", 1, "x"),
        event("impression", "one", 2, "y"),
        event("click", "one", 2, "y"),
        event("click", "one", 3, "z"),  # no item at slot 3
        event("click", "gone", 1, "x"),  # its impression is not in the log
        event("impression", "other", 1, "x"),
    ]
    boxes = logged_boxes(events)
    assert [(b.shown, b.clicked, b.length) for b in boxes] == [
        ({1: ("x", 1.0), 2: ("y", 1.0)}, {2}, 2),
        ({1: ("x", 1.0)}, set(), 1),
    ]
    assert len(logged_boxes(events, placement="sidebar")) == 1


def boxes_of(shown: str, clicked: list[set[int]]) -> list[LoggedBox]:
    """Boxes on source "a" that each showed the letters of `shown` (propensity 1)."""
    return [
        LoggedBox("a", AT, {k: (t, 1.0) for k, t in enumerate(shown, start=1)}, c) for c in clicked
    ]


def fixed(*items: str) -> Ranking:
    return lambda source, limit, at: list(items[:limit])


def test_the_logged_ranking_is_estimated_at_its_observed_ctr_and_others_are_refused() -> None:
    boxes = boxes_of("xyz", [{1}, set(), {2, 3}, set()])
    result = evaluate_policies(boxes, {"current": fixed("x", "y", "z")}, MIN_SUPPORT)
    (current,) = result.policies
    assert result.observed.value == current.estimates.ips.value == 3 / 4
    assert current.estimates.snips.value == current.estimates.dr.value == 3 / 4
    assert current.estimates.effective_sample_size == 4
    assert current.support.share == 1.0
    with pytest.raises(LogLacksSupport) as refused:
        evaluate_policies(
            boxes,
            {"current": fixed("x", "y", "z"), "swap": fixed("x", "z", "y")},
            MIN_SUPPORT,
        )
    message = str(refused.value)
    assert "'swap': 8 of its 12 choices (2 distinct article-slot pairs, in 4 of 4" in message
    assert "RECOMMENDER_EXPLORATION" in message and "'current'" not in message


def test_below_the_threshold_a_partly_supported_candidate_is_estimated() -> None:
    boxes = boxes_of("xyz", [{1}, {3}, set(), set()])
    result = evaluate_policies(
        boxes,
        {"top": fixed("x", "y", "q")},
        min_support=0.5,
    )
    (top,) = result.policies
    assert top.support.share == pytest.approx(2 / 3)
    assert top.estimates.ips.value == 1 / 4  # the click at slot 3 was on another item


def test_the_doubly_robust_model_of_an_unshown_choice_starts_from_earlier_clicks() -> None:
    # Slot 3 is clicked in a quarter of the boxes; "q" was never shown there, but before these
    # boxes readers clicked it twice as often as the slot average.
    boxes = boxes_of("xyz", [{1}, {3}, set(), set()])
    candidate = {"top": fixed("x", "y", "q")}

    def known(source: str, target: str) -> float:
        return 2.0 if (source, target) == ("a", "q") else 1.0

    plain = evaluate_policies(boxes, candidate, min_support=0.5).policies[0].estimates
    told = evaluate_policies(boxes, candidate, 0.5, known).policies[0].estimates
    assert told.dr.value == pytest.approx(plain.dr.value + 0.25)  # one more quarter at slot 3
    assert told.ips == plain.ips and told.snips == plain.snips  # no model in these


def test_no_impression_is_a_refusal_and_sources_no_longer_served_are_left_out() -> None:
    with pytest.raises(LogLacksSupport, match="no impression to evaluate"):
        evaluate_policies([], {"current": fixed("x")}, MIN_SUPPORT)

    def gone(source: str, limit: int, at: float) -> list[str]:
        raise ArticleNotFound(source)

    with pytest.raises(LogLacksSupport, match="none of a source still served"):
        evaluate_policies(boxes_of("x", [set()]), {"current": gone}, MIN_SUPPORT)


def test_a_candidate_with_the_versions_weights_ranks_as_served(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data")
    served, _ = load_recommender(settings.index)
    same = reranked(served, settings, settings.replaced(lexical_weight=9.0))
    assert same.weights["lexical"] == 9.0
    unchanged = reranked(served, settings, settings)
    assert unchanged.weights == served.weights
    slugs = [card["slug"] for card in served.cards]
    current = served_ranking(served)
    rescored = served_ranking(
        type(served)(served.version, served.policy, served.overlay, weights=served.weights)
    )
    for slug in slugs:
        assert rescored(slug, 5, AT) == current(slug, 5, AT)
    heavy = served_ranking(same)
    assert any(heavy(slug, 5, AT) != current(slug, 5, AT) for slug in slugs)
    diverse = served_ranking(reranked(served, settings, settings.replaced(diversity=1.0)))
    assert any(diverse(slug, 5, AT) != current(slug, 5, AT) for slug in slugs)
    assert current(slugs[0], 3, AT) == [
        served.cards[s.row]["slug"] for s in served.related(slugs[0], RelatedQuery(limit=3), AT)
    ]


def test_a_candidate_is_the_current_settings_with_its_ranking_settings_changed() -> None:
    current = Settings(data_dir=Path("x"), diversity=0.1, time_weight=2.0)
    text = (
        'diversity=0.3, section_half_life_days={"sport": 2, "news": 0.5} '
        "RECOMMENDER_FRESHNESS_HALF_LIFE_DAYS=3,lexical_weight=0"
    )
    changed = candidate_settings(current, text)
    assert changed.index.ranking.section_half_life_days == {"sport": 2.0, "news": 0.5}
    assert changed.index.policy.diversity == 0.3
    assert changed.index.policy.freshness_half_life_days == 3.0
    assert changed.index.fusion["lexical"] == 0.0
    assert changed.index.fusion["time"] == 2.0  # unchanged settings stay as they are
    assert changed.data_dir == Path("x")


def test_a_click_weight_candidate_ranks_with_clicks_learned_before_the_period(
    tmp_path: Path,
) -> None:
    settings, _ = build_fake_index(tmp_path / "data", click_prior_clicks=5.0)
    candidate = candidate_settings(settings, "click_weight=1.5")
    served, _ = load_recommender(settings.index)
    current = served_ranking(served)
    source = "volcano-0"
    last = current(source, 5, AT)[-1]
    # The day before the period, readers clicked `last` in slot 5 every time and the article
    # beside it in turns never; on the period's first day, half the time (not counted).
    before, first = date(2026, 12, 5), date(2026, 12, 6)
    other = next(slug for slug in ("volcano-2", "volcano-1") if slug != last)
    log = FileEventLog(settings.data_dir)
    for day, clicked_every in ((before, 2), (first, 4)):
        start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        for n in range(400):
            target = last if n % 2 == 0 else other
            shown = LoggedEvent(
                "impression", start + n, source, f"box-{day}-{n}", 5, target, "default",
                "default", "v1", 1.0,
            )  # fmt: skip
            clicked = target == last and n % clicked_every == 0
            log.write([shown, *([replace(shown, type="click", propensity=None)] * clicked)])
    clicks = clicks_before(log, settings, first)
    assert clicks.score(source, last) > 0.5
    learned = served.with_clicks(clicks)
    assert served_ranking(learned)(source, 5, AT) == current(source, 5, AT)  # at weight 0
    ranked = served_ranking(reranked(learned, settings, candidate))(source, 5, AT)
    assert ranked.index(last) < 4
    assert clicks_before(log, settings, before).score(source, last) == 0.0
