"""Impression log records for tests: the items of one box shown on a day, and a click."""

from __future__ import annotations

from datetime import UTC, date, datetime

from api.event_log.logged_events import LoggedEvent

DAY = date(2026, 12, 6)


def at(day: date, seconds: float = 0.0) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + seconds


def impression(
    impression_id: str, day: date = DAY, source: str = "volcano-0", targets: str = "abc"
) -> list[LoggedEvent]:
    """The items of one box shown on `day` (one letter a target), as the log keeps them."""
    return [
        LoggedEvent(
            type="impression",
            at=at(day, 3600 + position),
            source=source,
            impression=impression_id,
            position=position,
            target=f"target-{target}",
            placement="article-end",
            arm="default",
            version="v1",
            propensity=1.0,
        )
        for position, target in enumerate(targets, start=1)
    ]


def click(impression_id: str, position: int, day: date = DAY) -> LoggedEvent:
    return LoggedEvent(
        type="click",
        at=at(day, 7200),
        source="volcano-0",
        impression=impression_id,
        position=position,
        target="target-b",
        placement="article-end",
        arm="default",
        version="v1",
        propensity=None,
    )
