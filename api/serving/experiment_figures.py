"""An experiment's figures from the impression log: per arm and placement, boxes shown, boxes
clicked, click-through rate with a 95 % interval, the difference to the holdout with its
interval, and the sample-ratio-mismatch check of boxes against the arms' shares.

A box is one impression id (all its items); it counts as clicked when any of its items was.
The click-through rate is clicked boxes / boxes, a binomial proportion: its interval is
Wilson's score interval (sound for small counts and rates near 0), the difference to the
holdout's rate the normal (Wald) interval of a difference of two independent proportions.
The sample-ratio check is Pearson's chi-square of the arms' boxes against their shares
(k - 1 degrees of freedom): p < `SRM_P` means the split is not what the shares say (a bug in
drawing, caching or counting), and no difference on the page can be trusted.

Each worker keeps a running count of the experiment (`ExperimentFigureCounts`): a view of the
status page reads only what the log gained since the last view, and a box is remembered only
while an event of it can still be accepted (its token's life), then only counted.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

# scipy.special, not scipy.stats: the same survival function without ~0.5 s of imports at start.
from scipy.special import chdtrc

from api.event_log.logged_events import EventLog, LoggedEvent
from api.serving.experiment_arms import HOLDOUT, Experiment
from api.serving.exploration_draw import SHARE_STEPS
from recommender.click_statistics import LATE_SECONDS
from recommender.remembered_keys import RememberedKeys

#: 95 % two-sided.
Z = 1.959963984540054
#: Below this p-value the sample ratio is called a mismatch.
SRM_P = 0.001
#: What the sample-ratio check of every placement together is shown as.
ALL_PLACEMENTS = "all"
ArmPlacement = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class ArmRow:
    arm: str
    placement: str
    boxes: int
    clicked: int
    ctr: Interval | None
    """None without a box."""
    lift: Interval | None
    """This arm's rate minus the holdout's in the same placement (None for the holdout, or
    while either has no box)."""


@dataclass(frozen=True, slots=True)
class SampleRatio:
    placement: str
    """A placement, or `ALL_PLACEMENTS`."""
    boxes: int
    p_value: float | None
    """None without a box."""

    @property
    def mismatch(self) -> bool:
        return self.p_value is not None and self.p_value < SRM_P


@dataclass(frozen=True, slots=True)
class ExperimentFigures:
    rows: list[ArmRow]
    ratios: list[SampleRatio]


def wilson(successes: int, trials: int) -> Interval:
    """A proportion with its 95 % Wilson score interval (`trials` > 0)."""
    rate = successes / trials
    centre = (rate + Z * Z / (2 * trials)) / (1 + Z * Z / trials)
    half = (Z / (1 + Z * Z / trials)) * math.sqrt(
        rate * (1 - rate) / trials + Z * Z / (4 * trials * trials)
    )
    return Interval(rate, max(0.0, centre - half), min(1.0, centre + half))


def difference(a: tuple[int, int], b: tuple[int, int]) -> Interval:
    """Rate a - rate b, each (successes, trials > 0), with its 95 % Wald interval."""
    rate_a, rate_b = a[0] / a[1], b[0] / b[1]
    spread = math.sqrt(rate_a * (1 - rate_a) / a[1] + rate_b * (1 - rate_b) / b[1])
    value = rate_a - rate_b
    return Interval(value, value - Z * spread, value + Z * spread)


def sample_ratio_p(observed: list[int], shares: list[int]) -> float | None:
    """Pearson's chi-square p-value of `observed` counts against `shares` (any scale);
    None when nothing was observed."""
    total = sum(observed)
    if not total:
        return None
    expected = [total * share / sum(shares) for share in shares]
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    return float(chdtrc(len(shares) - 1, statistic))


@dataclass(slots=True)
class _Box:
    counted_as: ArmPlacement
    shown: bool = False
    clicked: bool = False


class ExperimentTally:
    """Boxes and clicked boxes of one experiment's arms per placement, added to as the log
    grows: those of its arms accepted since it started (events of earlier experiments' arms of
    the same name, from lists still cached at its start, are counted too: they end within a
    token's life). A box is remembered for `memory_seconds` after its first event, past which
    no event of it can be accepted; reading an event again counts nothing."""

    def __init__(self, experiment: Experiment, memory_seconds: float) -> None:
        self.experiment = experiment
        self._names = {arm.name for arm in experiment.arms}
        self._memory = memory_seconds
        self._boxes: Counter[ArmPlacement] = Counter()
        self._clicked: Counter[ArmPlacement] = Counter()
        self._placements: set[str] = set()
        self._recent: RememberedKeys[tuple[str, str], _Box] = RememberedKeys()
        self._watermark = experiment.started_at
        self._lock = threading.Lock()

    @property
    def since(self) -> float:
        """From when the log should be read again: a little before the latest event counted
        (the log's writers may add an event a little after its time)."""
        return max(self.experiment.started_at, self._watermark - LATE_SECONDS)

    def add(self, events: Iterable[LoggedEvent]) -> None:
        with self._lock:
            for event in events:
                if event.at < self.experiment.started_at or event.arm not in self._names:
                    continue
                self._placements.add(event.placement)
                key = (event.source, event.impression)
                box = self._recent.get(key)
                if box is None:
                    box = _Box((event.arm, event.placement))
                    self._recent.put(key, event.at, box)
                if event.type == "impression" and not box.shown:
                    box.shown = True
                    self._boxes[box.counted_as] += 1
                    self._clicked[box.counted_as] += box.clicked
                elif event.type == "click" and not box.clicked:
                    box.clicked = True
                    self._clicked[box.counted_as] += box.shown
                self._watermark = max(self._watermark, event.at)
                if self._recent.due:
                    self._recent.forget_before(self._watermark - self._memory)
            self._recent.forget_before(self._watermark - self._memory)

    @property
    def remembered_boxes(self) -> int:
        """Boxes an event of which may still come."""
        return len(self._recent)

    def figures(self) -> ExperimentFigures:
        with self._lock:
            boxes, clicked = dict(self._boxes), dict(self._clicked)
            placements = sorted(self._placements)
        return _figures(self.experiment, boxes, clicked, placements)


def _figures(
    experiment: Experiment,
    boxes: dict[ArmPlacement, int],
    clicked: dict[ArmPlacement, int],
    placements: list[str],
) -> ExperimentFigures:
    names = [arm.name for arm in experiment.arms]
    shares = [arm.share for arm in experiment.arms]
    rows: list[ArmRow] = []
    ratios: list[SampleRatio] = []
    for placement in placements:
        counts = {
            name: (clicked.get((name, placement), 0), boxes.get((name, placement), 0))
            for name in names
        }
        holdout = counts[HOLDOUT]
        for name in names:
            hits, shown = counts[name]
            lift = None
            if name != HOLDOUT and shown and holdout[1]:
                lift = difference((hits, shown), holdout)
            rows.append(
                ArmRow(name, placement, shown, hits, wilson(hits, shown) if shown else None, lift)
            )
        observed = [counts[name][1] for name in names]
        ratios.append(SampleRatio(placement, sum(observed), sample_ratio_p(observed, shares)))
    if len(ratios) > 1:
        totals = [sum(row.boxes for row in rows if row.arm == name) for name in names]
        ratios.append(SampleRatio(ALL_PLACEMENTS, sum(totals), sample_ratio_p(totals, shares)))
    return ExperimentFigures(rows, ratios)


def experiment_figures(events: Iterable[LoggedEvent], experiment: Experiment) -> ExperimentFigures:
    """The figures of `experiment` from the log's `events` read at once."""
    tally = ExperimentTally(experiment, math.inf)
    tally.add(events)
    return tally.figures()


class ExperimentFigureCounts:
    """A worker's running count of the current experiment, for the status page: each view
    adds what the log gained since the last one; a new experiment starts a new count."""

    def __init__(self, log: EventLog, memory_seconds: float) -> None:
        self._log = log
        self._memory = memory_seconds
        self._tally: ExperimentTally | None = None
        self._lock = threading.Lock()

    def figures(self, experiment: Experiment) -> ExperimentFigures:
        """Reads the log (blocking): call it off the event loop."""
        with self._lock:
            if self._tally is None or self._tally.experiment != experiment:
                self._tally = ExperimentTally(experiment, self._memory)
            self._tally.add(self._log.read_since(self._tally.since))
            return self._tally.figures()


def share_text(share: int) -> str:
    """A share in steps of 1/`SHARE_STEPS` as a percentage ("12.5 %")."""
    return f"{share * 100 / SHARE_STEPS:g} %"
