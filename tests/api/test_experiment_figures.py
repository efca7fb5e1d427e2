"""The experiment's figures from the impression log: boxes and clicked boxes per arm and
placement, Wilson intervals, the difference to the holdout, and the sample-ratio check."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from scipy.stats import chisquare

from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import LoggedEvent
from api.serving.experiment_arms import experiment_of
from api.serving.experiment_figures import (
    ALL_PLACEMENTS,
    ExperimentFigureCounts,
    ExperimentTally,
    difference,
    experiment_figures,
    sample_ratio_p,
    wilson,
)
from index.state.experiment_store import StoredExperiment
from recommender.settings import Settings

ARMS = [{"name": "holdout", "share": 0.5}, {"name": "b", "share": 0.5}]


def test_wilson_intervals_match_the_published_values() -> None:
    none = wilson(0, 10)
    assert none.value == 0 and none.low == 0 and none.high == pytest.approx(0.2775, abs=1e-4)
    half = wilson(5, 10)
    assert half.low == pytest.approx(0.2366, abs=1e-4)
    assert half.high == pytest.approx(0.7634, abs=1e-4)


def test_the_difference_interval_is_the_wald_interval_of_two_proportions() -> None:
    lift = difference((60, 1000), (40, 1000))
    spread = (0.06 * 0.94 / 1000 + 0.04 * 0.96 / 1000) ** 0.5
    assert lift.value == pytest.approx(0.02)
    assert lift.high - lift.value == pytest.approx(1.959964 * spread, rel=1e-6)


def test_the_sample_ratio_check_is_pearsons_chi_square() -> None:
    assert sample_ratio_p([500, 500], [5000, 5000]) == pytest.approx(1.0)
    assert sample_ratio_p([], []) is None
    for observed, shares in (([600, 400], [1, 1]), ([700, 280, 20], [7, 2, 1])):
        expected = [sum(observed) * s / sum(shares) for s in shares]
        assert sample_ratio_p(observed, shares) == pytest.approx(
            chisquare(observed, expected).pvalue
        )
    assert sample_ratio_p([600, 400], [1, 1]) < 0.001 < sample_ratio_p([520, 480], [1, 1])  # type: ignore[operator]


def events_of(
    arm: str, placement: str, boxes: int, clicked: int, at: float = 100.0
) -> list[LoggedEvent]:
    made = []
    for box in range(boxes):
        impression = f"{arm}-{placement}-{box:05d}"
        for position in (1, 2):
            made.append(
                LoggedEvent(
                    "impression",
                    at,
                    "a",
                    impression,
                    position,
                    f"t{position}",
                    placement,
                    arm,
                    "v",
                    1.0,
                )
            )
        if box < clicked:
            made.append(
                LoggedEvent("click", at, "a", impression, 2, "t2", placement, arm, "v", None)
            )
    return made


def test_figures_count_boxes_per_arm_and_placement_and_flag_a_skewed_split(
    tmp_path: object,
) -> None:
    experiment = experiment_of(StoredExperiment(4, ARMS, "ana", 50.0), Settings())
    assert experiment is not None
    log = (
        events_of("holdout", "default", 500, 20)
        + events_of("b", "default", 500, 40)
        + events_of("holdout", "sidebar", 650, 10)
        + events_of("b", "sidebar", 350, 10)
        + events_of("b", "default", 100, 100, at=10.0)  # before the experiment started
        + events_of("default", "default", 100, 100)  # a client that does not draw
    )
    figures = experiment_figures(log, experiment)
    rows = {(row.arm, row.placement): row for row in figures.rows}
    assert {key: (row.boxes, row.clicked) for key, row in rows.items()} == {
        ("holdout", "default"): (500, 20),
        ("b", "default"): (500, 40),
        ("holdout", "sidebar"): (650, 10),
        ("b", "sidebar"): (350, 10),
    }
    assert rows[("b", "default")].lift == difference((40, 500), (20, 500))
    assert rows[("holdout", "default")].lift is None
    assert rows[("b", "default")].ctr == wilson(40, 500)
    ratios = {ratio.placement: ratio for ratio in figures.ratios}
    assert not ratios["default"].mismatch and ratios["sidebar"].mismatch
    assert ratios[ALL_PLACEMENTS].boxes == 2000 and ratios[ALL_PLACEMENTS].mismatch


def test_a_running_count_counts_each_box_once_and_forgets_boxes_past_their_tokens_life() -> None:
    experiment = experiment_of(StoredExperiment(4, ARMS, "ana", 50.0), Settings())
    assert experiment is not None
    first = events_of("b", "default", 300, 30, at=100.0)
    later = events_of("holdout", "default", 200, 0, at=3_000.0)
    tally = ExperimentTally(experiment, memory_seconds=1_000)
    tally.add(first)
    tally.add(first[-100:] + later)  # a view reads a little before the last event again
    assert tally.figures() == experiment_figures(first + later, experiment)
    # The first boxes are past any token's life: forgotten, and still counted.
    assert tally.remembered_boxes == 200
    rows = {row.arm: (row.boxes, row.clicked) for row in tally.figures().rows}
    assert rows == {"holdout": (200, 0), "b": (300, 30)}
    # A click that comes after its box's impression counts the box as clicked, once.
    box = later[0]
    click = LoggedEvent("click", 3_100.0, box.source, box.impression, 1, box.target,
                        box.placement, box.arm, "v", None)  # fmt: skip
    tally.add([click, click])
    assert {row.arm: row.clicked for row in tally.figures().rows}["holdout"] == 1


def test_views_while_the_log_grows_count_every_box_once(tmp_path: Path) -> None:
    experiment = experiment_of(StoredExperiment(4, ARMS, "ana", 50.0), Settings())
    assert experiment is not None
    log = FileEventLog(tmp_path)
    counts = ExperimentFigureCounts(log, memory_seconds=3_600)
    written = []

    def write() -> None:
        for batch in range(20):
            events = events_of("b", f"p{batch % 2}", 200, 20, at=time.time())
            events = [replace(e, impression=f"{batch}-{e.impression}") for e in events]
            log.write(events)
            written.extend(events)

    def view() -> None:
        for _ in range(10):
            counts.figures(experiment)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=view) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts.figures(experiment) == experiment_figures(written, experiment)
    assert sum(row.boxes for row in counts.figures(experiment).rows) == 4_000
    log.close()
