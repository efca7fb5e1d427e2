"""One behaviour for every `EventLog`: the same calls on the data directory's files and on the
shared PostgreSQL database (what is kept, once; what a read returns; what retention deletes;
the export in both formats), and two processes logging the same events at the same time."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from api.event_log.event_log_export import export_events
from api.event_log.event_log_factory import open_event_log
from api.event_log.logged_events import EventLog, LoggedEvent, first_kept_day
from api.serving.click_counts import FILE, ClickCounts, load_counts, recount_to_file
from index.state.postgres_database import PostgresState
from recommender.click_statistics import ClickStatistics
from recommender.settings import ClickSettings, DatabaseSettings, Settings
from tests.support.event_log_records import DAY, at, click, impression


@pytest.fixture(params=["files", pytest.param("postgres", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str | None]:
    """(data directory, database URL or None) of a fresh log of the parametrised kind."""
    if request.param == "postgres":
        return tmp_path, str(request.getfixturevalue("postgres_url"))
    return tmp_path, None


def opened(where: tuple[Path, str | None]) -> tuple[EventLog, PostgresState | None]:
    data_dir, url = where
    postgres = None if url is None else PostgresState(DatabaseSettings(database_url=url))
    return open_event_log(data_dir, postgres), postgres


@pytest.fixture
def log(where: tuple[Path, str | None]) -> Iterator[EventLog]:
    event_log, postgres = opened(where)
    yield event_log
    event_log.close()
    if postgres is not None:
        postgres.close()


def everything(log: EventLog) -> list[LoggedEvent]:
    return list(log.read(date(2000, 1, 1), date(2100, 1, 1)))


def test_each_event_is_kept_once_with_its_fields(log: EventLog) -> None:
    shown = impression("box-0000000000000001")
    assert log.write([*shown, click("box-0000000000000001", 2)]) == 4
    # A replayed beacon, and the same box's events again in one batch, add nothing.
    assert log.write([*shown, click("box-0000000000000001", 2), shown[0]]) == 0
    assert log.write([*impression("box-0000000000000002"), shown[1]]) == 3
    kept = everything(log)
    assert sorted(kept, key=LoggedEvent.key) == sorted(
        [*shown, click("box-0000000000000001", 2), *impression("box-0000000000000002")],
        key=LoggedEvent.key,
    )


def test_exploration_propensities_are_kept_exactly(log: EventLog, tmp_path: Path) -> None:
    # An exploring box of three free slots and three reserves at share 0.05: two items kept
    # in place and a reserve (docs/learning.md's formulas), as the service logs them.
    share, free, reserves = 0.05, 3, 3
    kept, reserve = (1 - share) + share * (1 - 1 / free), share / (free * reserves)
    box = [
        replace(event, propensity=propensity)
        for event, propensity in zip(
            impression("box-0000000000000001"), (kept, reserve, kept), strict=True
        )
    ]
    assert log.write(box) == 3
    assert [e.propensity for e in everything(log)] == [kept, reserve, kept]
    lines = tmp_path / "out.jsonl"
    export_events(log.read(DAY, DAY), lines, "jsonl")
    assert [json.loads(line)["propensity"] for line in lines.read_text().splitlines()] == [
        kept,
        reserve,
        kept,
    ]


def test_the_same_id_on_another_source_or_slot_is_another_event(log: EventLog) -> None:
    assert log.write(impression("box-0000000000000001", targets="ab")) == 2
    assert log.write(impression("box-0000000000000001", source="bitcoin-0", targets="ab")) == 2
    assert log.write(impression("box-0000000000000001", targets="abc")) == 1  # slot 3 is new
    assert log.write([click("box-0000000000000001", 1), click("box-0000000000000001", 2)]) == 2
    assert len(everything(log)) == 7


def test_a_read_returns_the_days_asked_for_in_order(log: EventLog) -> None:
    days = [date(2026, 12, d) for d in (1, 2, 3, 5)]
    for number, day in enumerate(reversed(days)):
        log.write(impression(f"box-00000000000000{number:02d}", day=day))
    got = list(log.read(date(2026, 12, 2), date(2026, 12, 4)))
    assert [event.day for event in got] == [date(2026, 12, 2)] * 3 + [date(2026, 12, 3)] * 3
    assert [event.position for event in got] == [1, 2, 3, 1, 2, 3]
    assert list(log.read(date(2026, 12, 6), date(2026, 12, 31))) == []


def test_clicks_since_a_moment_are_read_alone_across_days(log: EventLog) -> None:
    """What popularity reads: clicks only, from `since` on (to the second), over day files."""
    day_before = date(2026, 12, 5)
    log.write([*impression("box-0000000000000001"), click("box-0000000000000001", 2)])
    log.write([click("box-0000000000000002", 1), click("box-0000000000000003", 1, day_before)])
    log.write([replace(click("box-0000000000000004", 3, day_before), target="target-c")])
    since = at(day_before, 7200)  # the moment of the day before's clicks

    def clicks_since(moment: float) -> dict[str, int]:
        read = list(log.clicks_read_since(moment))
        assert {event.type for event in read} <= {"click"}
        return dict(Counter(event.target for event in read))

    assert clicks_since(since) == {"target-b": 3, "target-c": 1}
    assert clicks_since(since + 0.001) == {"target-b": 2}
    assert clicks_since(at(DAY, 7200.001)) == {}


def test_a_read_since_a_moment_streams_every_later_event_across_days(log: EventLog) -> None:
    """What a worker's click counts add: every event type, from `since` on (to the second)."""
    day_before = date(2026, 12, 5)
    early = impression("box-0000000000000001", day=day_before)
    later = [*impression("box-0000000000000002"), click("box-0000000000000002", 2)]
    log.write([*early, *later])
    since = early[1].at
    assert sorted(log.read_since(since), key=LoggedEvent.key) == sorted(
        [*early[1:], *later], key=LoggedEvent.key
    )
    assert list(log.read_since(later[-1].at + 0.001)) == []


def test_click_counts_follow_the_log_without_a_restart(log: EventLog, tmp_path: Path) -> None:
    """The click signal's counts over either backend: a first recount, then the new events."""
    served: list[ClickStatistics] = []
    now = at(DAY, 3600)  # the events come as they are accepted
    counts = ClickCounts(log, served.append, ClickSettings(), tmp_path, 10_000, lambda: now)
    log.write(impression("box-0000000000000001"))
    counts.refresh()
    first = served[-1].explained("volcano-0", "target-b")
    assert first is not None and first.click_rate == 0.0 and first.impressions > 0
    log.write([*impression("box-0000000000000002"), click("box-0000000000000002", 2)])
    counts.refresh()
    found = served[-1].explained("volcano-0", "target-b")
    assert found is not None and found.impressions == pytest.approx(2 * first.impressions)
    assert found.click_rate == pytest.approx(0.5, rel=0.01)  # the click came an hour later


def test_the_nightly_recount_counts_either_backend_into_the_data_directory(
    log: EventLog, where: tuple[Path, str | None]
) -> None:
    data_dir, url = where
    log.write([*impression("box-0000000000000001"), click("box-0000000000000001", 2)])
    settings = Settings(data_dir=data_dir, database_url=url, events_retention_days=10_000)
    path, tally = recount_to_file(settings, at(DAY, 7200))
    assert tally.events == 4
    saved = load_counts(data_dir, settings.clicks)
    assert saved is not None and saved[0].to_json() == tally.to_json()
    assert path == data_dir / FILE


def test_retention_deletes_whole_days_before_the_first_kept(log: EventLog) -> None:
    for day in (1, 2, 3):
        log.write(impression(f"box-000000000000000{day}", day=date(2026, 12, day)))
    first_kept = first_kept_day(date(2026, 12, 3), retention_days=2)
    assert first_kept == date(2026, 12, 2)
    assert log.prune(first_kept) > 0
    assert {event.day for event in everything(log)} == {date(2026, 12, 2), date(2026, 12, 3)}
    assert log.prune(first_kept) == 0


def test_the_export_writes_the_same_events_as_jsonl_and_parquet(
    log: EventLog, tmp_path: Path
) -> None:
    log.write([*impression("box-0000000000000001"), click("box-0000000000000001", 2)])
    log.write(impression("box-0000000000000002", day=date(2026, 12, 7)))
    since, until = DAY, DAY
    lines = tmp_path / "out.jsonl"
    assert export_events(log.read(since, until), lines, "jsonl") == 4
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [(r["type"], r["position"], r["propensity"]) for r in rows] == [
        ("impression", 1, 1.0),
        ("impression", 2, 1.0),
        ("impression", 3, 1.0),
        ("click", 2, None),
    ]
    assert rows[0]["at"] == "2026-12-06T01:00:01Z"
    assert {r["placement"] for r in rows} == {"article-end"}
    columns = tmp_path / "out.parquet"
    assert export_events(log.read(since, until), columns, "parquet") == 4
    table = pq.read_table(columns).to_pylist()
    for row in table:
        row["at"] = row["at"].isoformat().replace("+00:00", "Z")
    assert table == rows


def _log_concurrently(where: tuple[Path, str | None], start: object, out: object) -> None:
    """One of two writers: the same 40 boxes, in batches of 4 events, from the same instant."""
    event_log, postgres = opened(where)
    events = [e for n in range(40) for e in impression(f"box-{n:016d}")]
    start.wait()  # type: ignore[attr-defined]
    written = sum(event_log.write(events[i : i + 4]) for i in range(0, len(events), 4))
    out.put(written)  # type: ignore[attr-defined]
    if postgres is not None:
        postgres.close()


def test_two_processes_logging_the_same_events_keep_each_once(
    where: tuple[Path, str | None], log: EventLog
) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    out = context.Queue()
    writers = [
        context.Process(target=_log_concurrently, args=(where, start, out)) for _ in range(2)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    assert out.get(timeout=5) + out.get(timeout=5) == 120
    assert len(everything(log)) == 120
    assert len({event.key() for event in everything(log)}) == 120
