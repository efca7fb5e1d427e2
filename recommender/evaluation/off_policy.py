"""Off-policy estimates of a ranking's clicks per impression from a log of another ranking's
impressions, under the item-position click model (Li et al. 2018, "Offline Evaluation of Ranking
Policies with Click Models"): a click at slot k depends only on the item shown there, its slot
and the source, never on the rest of the list.

One row per (logged impression, slot the candidate fills): the weight
w = π(logged item at k | source) / μ(logged item at k | source) (μ, the logged propensity; w = 0
where the candidate puts another item there, or the log shows no item at k), the click there,
and for the doubly robust estimate the reward model's value of the candidate's choice and of
the logged item. The formulas and their assumptions are in docs/learning.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: Two-sided 95 % quantile of the normal distribution.
Z_95 = 1.959963984540054
#: Prior strength of the reward model: a pair's attractiveness starts at 1 (its slot's
#: click-through rate) as if it had earned this many clicks where this many were expected.
PRIOR_EXPECTED_CLICKS = 1.0


PairPrior = Callable[[int, int], float]
"""(source, item) -> the attractiveness expected of the pair before the log is read."""


def average_pair(source: int, item: int) -> float:
    """The average item's attractiveness: nothing known of the pair."""
    return 1.0


@dataclass(frozen=True, slots=True)
class SlotRows:
    """The candidate's slots over a log of `impressions` impressions (rows of NumPy arrays)."""

    impressions: int
    """Impressions in the log, including those where the candidate fills no slot."""
    impression: NDArray[np.int64]
    """The row's impression, 0..impressions-1."""
    slot: NDArray[np.int64]
    weight: NDArray[np.float64]
    """π(logged item at slot) / μ(logged item at slot); 0 where unsupported or not chosen."""
    click: NDArray[np.float64]
    """1 when the logged item at that slot was clicked."""
    model_candidate: NDArray[np.float64]
    """Σ_a π(a at slot) r̂(a, slot): the reward model's clicks for the candidate's choice."""
    model_logged: NDArray[np.float64]
    """r̂(logged item, slot); 0 where the log shows no item at the slot."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate of clicks per impression with its 95 % confidence interval."""

    value: float
    low: float
    high: float

    @classmethod
    def normal(cls, value: float, terms: NDArray[np.float64]) -> Estimate:
        """`value` ± Z_95 standard errors of the mean of the per-impression `terms`."""
        n = len(terms)
        error = float(np.std(terms, ddof=1)) / math.sqrt(n) if n > 1 else math.inf
        return cls(value, value - Z_95 * error, value + Z_95 * error)


@dataclass(frozen=True, slots=True)
class PolicyEstimates:
    ips: Estimate
    snips: Estimate
    dr: Estimate
    effective_sample_size: float


def per_impression(rows: SlotRows, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """`values` of the rows summed by impression (0 for an impression without rows)."""
    summed = np.bincount(rows.impression, weights=values, minlength=rows.impressions)
    return summed.astype(np.float64, copy=False)


def ips(rows: SlotRows) -> Estimate:
    """Inverse propensity scoring: (1/n) Σ_i Σ_k w_ik c_ik."""
    terms = per_impression(rows, rows.weight * rows.click)
    return Estimate.normal(float(terms.mean()), terms)


def snips(rows: SlotRows) -> Estimate:
    """Self-normalised IPS, slot by slot: Σ_k (Σ_i w_ik c_ik) / (Σ_i w_ik); its interval by the
    delta method (the ratio linearised around the estimate)."""
    slots = int(rows.slot.max()) + 1 if len(rows.slot) else 0
    clicks = np.bincount(rows.slot, weights=rows.weight * rows.click, minlength=slots)
    weights = np.bincount(rows.slot, weights=rows.weight, minlength=slots)
    by_slot = np.divide(clicks, weights, out=np.zeros(slots), where=weights > 0)
    mean_weight = weights / rows.impressions
    influence = np.divide(
        rows.weight * (rows.click - by_slot[rows.slot]),
        mean_weight[rows.slot],
        out=np.zeros(len(rows.slot)),
        where=mean_weight[rows.slot] > 0,
    )
    value = float(by_slot.sum())
    terms = per_impression(rows, influence)
    return Estimate.normal(value, terms)


def doubly_robust(rows: SlotRows) -> Estimate:
    """(1/n) Σ_i Σ_k [Σ_a π(a at k) r̂(a, k) + w_ik (c_ik - r̂(logged item, k))]."""
    terms = per_impression(
        rows, rows.model_candidate + rows.weight * (rows.click - rows.model_logged)
    )
    return Estimate.normal(float(terms.mean()), terms)


def effective_sample_size(rows: SlotRows) -> float:
    """(Σ_i w̄_i)² / Σ_i w̄_i², w̄_i the mean weight over the candidate's slots of impression i
    (impressions where the candidate fills no slot left out): n when every weight is 1."""
    slots = per_impression(rows, np.ones(len(rows.slot)))
    filled = slots > 0
    mean = per_impression(rows, rows.weight)[filled] / slots[filled]
    square = float(np.square(mean).sum())
    return float(mean.sum()) ** 2 / square if square > 0 else 0.0


def estimate(rows: SlotRows) -> PolicyEstimates:
    """IPS, SNIPS and DR with their 95 % intervals, and the effective sample size."""
    return PolicyEstimates(ips(rows), snips(rows), doubly_robust(rows), effective_sample_size(rows))


@dataclass(frozen=True, slots=True)
class RewardModel:
    """r̂(source, item, slot) = slot CTR x attractiveness(source, item): the logged clicks of a
    pair over the clicks its slots would have given an average item, shrunk by
    `PRIOR_EXPECTED_CLICKS` towards what was known before the log (`prior`: 1, the average
    item, unless told) (a position-debiased, smoothed click-through rate)."""

    slot_rate: NDArray[np.float64]
    """Clicks per display at each slot (index 0 unused when slots start at 1)."""
    attractiveness: dict[tuple[int, int], float]
    prior: PairPrior = average_pair
    """The attractiveness of a pair the log does not show."""

    @classmethod
    def fit(
        cls,
        source: NDArray[np.int64],
        item: NDArray[np.int64],
        slot: NDArray[np.int64],
        click: NDArray[np.float64],
        prior: PairPrior = average_pair,
    ) -> RewardModel:
        """From the logged displays: each row one item shown at a slot, clicked or not."""
        slots = int(slot.max()) + 1 if len(slot) else 1
        shown = np.bincount(slot, minlength=slots).astype(np.float64)
        clicked = np.bincount(slot, weights=click, minlength=slots)
        rate = np.divide(clicked, shown, out=np.zeros(slots), where=shown > 0)
        pairs: dict[tuple[int, int], list[float]] = {}
        for s, a, expected, c in zip(
            source.tolist(), item.tolist(), rate[slot].tolist(), click.tolist(), strict=True
        ):
            totals = pairs.setdefault((s, a), [0.0, 0.0])
            totals[0] += c
            totals[1] += expected
        strength = PRIOR_EXPECTED_CLICKS
        return cls(
            rate,
            {
                pair: (c + strength * prior(*pair)) / (e + strength)
                for pair, (c, e) in pairs.items()
            },
            prior,
        )

    @classmethod
    def cross_fitted(
        cls,
        source: NDArray[np.int64],
        item: NDArray[np.int64],
        slot: NDArray[np.int64],
        click: NDArray[np.float64],
        fold: NDArray[np.bool_],
        prior: PairPrior = average_pair,
    ) -> tuple[RewardModel, RewardModel]:
        """The models for the displays outside `fold` and for those in it, each fitted on the
        other's: no display's own click enters the model that corrects it (the doubly robust
        correction then stays unbiased however the model errs)."""
        inside = cls.fit(source[fold], item[fold], slot[fold], click[fold], prior)
        outside = cls.fit(source[~fold], item[~fold], slot[~fold], click[~fold], prior)
        return inside, outside

    def __call__(self, source: int, item: int, slot: int) -> float:
        rate = float(self.slot_rate[slot]) if slot < len(self.slot_rate) else 0.0
        found = self.attractiveness.get((source, item))
        return rate * (found if found is not None else self.prior(source, item))
