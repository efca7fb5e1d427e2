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
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from scipy.stats import chi2

from api.event_log.logged_events import LoggedEvent
from api.serving.experiment_arms import HOLDOUT, Experiment
from api.serving.exploration_draw import SHARE_STEPS

#: 95 % two-sided.
Z = 1.959963984540054
#: Below this p-value the sample ratio is called a mismatch.
SRM_P = 0.001
#: What the sample-ratio check of every placement together is shown as.
ALL_PLACEMENTS = "all"


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
    return float(chi2.sf(statistic, len(shares) - 1))


def experiment_figures(events: Iterable[LoggedEvent], experiment: Experiment) -> ExperimentFigures:
    """The figures of `experiment` from the log's `events`: those of its arms accepted since
    it started (events of earlier experiments' arms of the same name, from lists still cached
    at its start, are counted too: they end within a token's life)."""
    names = [arm.name for arm in experiment.arms]
    boxes: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    clicked: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    placements: set[str] = set()
    for event in events:
        if event.at < experiment.started_at or event.arm not in names:
            continue
        placements.add(event.placement)
        counted = boxes if event.type == "impression" else clicked
        counted[(event.arm, event.placement)].add((event.source, event.impression))
    rows: list[ArmRow] = []
    ratios: list[SampleRatio] = []
    for placement in sorted(placements):
        counts = {
            name: (
                len(clicked[(name, placement)] & boxes[(name, placement)]),
                len(boxes[(name, placement)]),
            )
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
        shares = [arm.share for arm in experiment.arms]
        ratios.append(SampleRatio(placement, sum(observed), sample_ratio_p(observed, shares)))
    if len(ratios) > 1:
        totals = [sum(row.boxes for row in rows if row.arm == name) for name in names]
        shares = [arm.share for arm in experiment.arms]
        ratios.append(SampleRatio(ALL_PLACEMENTS, sum(totals), sample_ratio_p(totals, shares)))
    return ExperimentFigures(rows, ratios)


def share_text(share: int) -> str:
    """A share in steps of 1/`SHARE_STEPS` as a percentage ("12.5 %")."""
    return f"{share * 100 / SHARE_STEPS:g} %"
