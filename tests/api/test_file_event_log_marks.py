"""The file log's reads since a moment start at the last mark before it, not at the start of
the day: the same events as a read of the whole day (lines written late, out of order, and a
line a crash cut short included), while a later read takes only the tail."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from api.event_log import file_event_log
from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import LoggedEvent
from tests.support.event_log_records import DAY, at, impression


def day_of_batches(seed: int) -> list[list[LoggedEvent]]:
    """Batches as the workers' writers append them: in time order, except that a batch may
    hold events accepted up to ten minutes before (a writer retrying through an outage)."""
    rng = random.Random(seed)
    batches = []
    for n in range(300):
        moment = at(DAY, 60.0 * n)
        late = moment - rng.uniform(0, 600) if rng.random() < 0.1 else moment
        batch = impression(f"box-{n:016d}")
        batches.append([replace(e, at=late + e.position / 10) for e in batch])
    return batches


def since(log: FileEventLog, moment: float) -> list[LoggedEvent]:
    return sorted(log.read_since(moment), key=LoggedEvent.key)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_read_since_a_moment_gets_every_later_event_however_late_it_was_written(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_event_log, "MARK_BYTES", 2048)  # many marks in a small file
    writer = FileEventLog(tmp_path)
    written: list[LoggedEvent] = []
    rng = random.Random(seed)
    reader = FileEventLog(tmp_path)
    for batch in day_of_batches(seed):
        writer.write(batch)
        written.extend(batch)
        if rng.random() < 0.2:
            moment = rng.choice(written).at + rng.uniform(-30, 30)
            expected = sorted((e for e in written if e.at >= moment), key=LoggedEvent.key)
            assert since(reader, moment) == expected  # marks left by earlier reads
    with writer.path(DAY).open("ab") as file:  # a crashed writer's half line, then more
        file.write(b'{"type":"impression","at":17\n')
    more = impression("box-after-the-crash", targets="d")
    writer.write(more)
    for moment in sorted(rng.choice(written).at for _ in range(20)):
        expected = sorted((e for e in [*written, *more] if e.at >= moment), key=LoggedEvent.key)
        assert since(reader, moment) == expected


def test_a_later_read_takes_only_the_tail_of_the_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_event_log, "MARK_BYTES", 4096)
    log = FileEventLog(tmp_path)
    for batch in day_of_batches(seed=4):
        log.write(batch)
    size = log.path(DAY).stat().st_size
    in_file = list(log.read(DAY, DAY))
    assert len(list(log._lines_since(at(DAY)))) == len(in_file)  # the first read: all of it
    last_fifth = at(DAY, 60.0 * 240)
    tail = list(log._lines_since(last_fifth))
    read = sum(len(line) for line, _ in tail)
    assert read < size / 3, f"read {read} of {size} bytes for the last fifth of the day"
    assert all(e.at < last_fifth for e in in_file[: len(in_file) - len(tail)])


def test_a_read_of_today_keeps_the_marks_of_yesterday_for_a_read_from_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refreshes of several kinds share one log: the popular articles' window may reach into
    yesterday while the click counts read the last minutes."""
    monkeypatch.setattr(file_event_log, "MARK_BYTES", 4096)
    log = FileEventLog(tmp_path)
    for batch in day_of_batches(seed=5):
        log.write(batch)
    tomorrow = DAY + timedelta(days=1)
    log.write(impression("box-of-the-next-day", day=tomorrow))
    late_yesterday = at(DAY, 60.0 * 240)
    list(log._lines_since(at(DAY)))  # marks the whole of yesterday
    list(log._lines_since(at(tomorrow)))  # a read of today only
    yesterday = [line for line, path in log._lines_since(late_yesterday) if path == log.path(DAY)]
    size = log.path(DAY).stat().st_size
    read = sum(len(line) for line in yesterday)
    assert read < size / 3, f"read {read} of {size} bytes of yesterday's file again"
