"""`recommender evaluate-policy`: the clicks per impression that rankings would have had over
the impression log, estimated off-policy (`recommender.evaluation.off_policy`).

The log's impressions are grouped back into boxes (source, items by slot with their
propensities, clicked slots). Each ranking is asked for its list of every logged box's source,
as long as the box was, at the start of the hour it was shown in; each slot of that list is
compared with what the box showed there. A ranking whose choices the log shows too rarely is
refused (`LogLacksSupport`): the estimators cannot see clicks on lists nobody was shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from api.event_log.logged_events import EventLog, LoggedEvent, first_kept_day
from index.serving.recommender_engine import Recommender
from recommender.click_statistics import ClickStatistics, ClickTally
from recommender.errors import ArticleNotFound, LogLacksSupport
from recommender.evaluation.off_policy import (
    Estimate,
    PairPrior,
    PolicyEstimates,
    RewardModel,
    SlotRows,
    average_pair,
    estimate,
)
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from recommender.signals.registry import fusion_weights

#: A deterministic ranking: (source slug, list length, time) -> the slugs it shows, best first;
#: raises ArticleNotFound for a source it does not serve.
Ranking = Callable[[str, int, float], list[str]]
#: (source slug, target slug) -> how many times its slot's average clicks the pair earns.
PairRatio = Callable[[str, str], float]
_HOUR = 3600


@dataclass
class LoggedBox:
    """One impression as logged: what each slot showed, with what propensity, and the clicks."""

    source: str
    at: float
    shown: dict[int, tuple[str, float]] = field(default_factory=dict)
    """Slot -> (target, propensity)."""
    clicked: set[int] = field(default_factory=set)

    @property
    def length(self) -> int:
        return max(self.shown)


def logged_boxes(events: Iterable[LoggedEvent], placement: str | None = None) -> list[LoggedBox]:
    """The impressions of `events` (of `placement`, or all), oldest first; clicks without their
    impression in the log are left out."""
    boxes: dict[tuple[str, str], LoggedBox] = {}
    clicks: list[LoggedEvent] = []
    for event in events:
        if placement is not None and event.placement != placement:
            continue
        if event.type == "click":
            clicks.append(event)
            continue
        box = boxes.setdefault((event.source, event.impression), LoggedBox(event.source, event.at))
        box.at = min(box.at, event.at)
        box.shown[event.position] = (event.target, event.propensity or 0.0)
    for click in clicks:
        clicked = boxes.get((click.source, click.impression))
        if clicked is not None and click.position in clicked.shown:
            clicked.clicked.add(click.position)
    return sorted(boxes.values(), key=lambda box: box.at)


def reranked(recommender: Recommender, current: Settings, candidate: Settings) -> Recommender:
    """`recommender` (what is served with the `current` settings) as it would serve with the
    `candidate` settings' ranking: their serving policy, and the fusion parameters they change
    applied over those the version was built with."""
    before, after = _fusion(current), _fusion(candidate)
    changed = {name: value for name, value in after.items() if value != before[name]}
    weights = fusion_weights({**recommender.weights, **changed}) if changed else None
    return Recommender(
        recommender.version,
        candidate.index.policy,
        recommender.overlay,
        recommender.overrides,
        recommender.weights_given if weights is None else weights,
        recommender.clicks,
    )


def _fusion(settings: Settings) -> dict[str, float]:
    """The fusion parameters the settings rank with: those recorded in a version at reindex,
    and those applied when it is served (the click weight)."""
    return {**settings.index.fusion, **settings.index.ranking.served}


def clicks_before(event_log: EventLog, settings: Settings, first: date) -> ClickStatistics:
    """The click statistics as they stood when UTC day `first` began, from the log's earlier
    days alone: a ranking with clicks is then judged on clicks it did not learn from."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    tally = ClickTally(settings.clicks.half_life_days, start)
    last = first - timedelta(days=1)
    tally.add(event_log.read(first_kept_day(last, settings.event_log.retention_days), last))
    return tally.statistics(start, settings.clicks.prior_clicks)


def served_ranking(recommender: Recommender) -> Ranking:
    """`recommender`'s lists as the service answers a plain related request (`limit` alone),
    editors' pins and blocks applied, ranked at `at`."""

    def ranking(source: str, limit: int, at: float) -> list[str]:
        suggestions = recommender.related(source, RelatedQuery(limit=limit), now=at)
        return [recommender.cards[s.row]["slug"] for s in suggestions]

    return ranking


@dataclass(frozen=True, slots=True)
class Support:
    """How much of a ranking's choices the log shows with a nonzero propensity."""

    choices: int
    """(impression, slot) pairs the ranking fills."""
    unsupported: int
    """Of them, those whose (source, slot, item) the log never shows."""
    unsupported_items: int
    """Distinct (source, slot, item) choices the log never shows."""
    impressions: int
    """Impressions with at least one unsupported choice."""

    @property
    def share(self) -> float:
        return 1.0 - self.unsupported / self.choices if self.choices else 0.0


@dataclass(frozen=True, slots=True)
class PolicyReport:
    name: str
    estimates: PolicyEstimates
    support: Support


@dataclass(frozen=True, slots=True)
class Evaluation:
    impressions: int
    """Impressions evaluated (those whose source every ranking serves)."""
    skipped: int
    """Impressions left out: their source is no longer served."""
    clicks: int
    observed: Estimate
    """The logged boxes' own clicks per impression."""
    policies: list[PolicyReport]

    def as_json(self) -> dict[str, Any]:
        def interval(e: Estimate) -> dict[str, float]:
            return {"value": e.value, "low": e.low, "high": e.high}

        return {
            "impressions": self.impressions,
            "skipped": self.skipped,
            "clicks": self.clicks,
            "observed": interval(self.observed),
            "policies": {
                p.name: {
                    "ips": interval(p.estimates.ips),
                    "snips": interval(p.estimates.snips),
                    "dr": interval(p.estimates.dr),
                    "ess": p.estimates.effective_sample_size,
                    "support": p.support.share,
                    "choices": p.support.choices,
                    "unsupported_choices": p.support.unsupported,
                    "unsupported_impressions": p.support.impressions,
                }
                for p in self.policies
            },
        }


def evaluate_policies(
    boxes: list[LoggedBox],
    rankings: Mapping[str, Ranking],
    min_support: float,
    known: PairRatio | None = None,
) -> Evaluation:
    """Estimate each ranking's clicks per impression over `boxes`; raises `LogLacksSupport` when
    there are none, or when the log shows less than `min_support` of a ranking's choices.

    `known`: what was known of a pair before the boxes (`ClickStatistics.ratio` of the clicks
    counted before them), which the doubly robust estimate's reward model starts from; without
    it, a pair the boxes do not show is expected to earn its slot's average."""
    lists = {name: _lists(boxes, ranking) for name, ranking in rankings.items()}
    served = [i for i in range(len(boxes)) if all(i in by_box for by_box in lists.values())]
    if not served:
        raise LogLacksSupport(
            f"no impression to evaluate: the log holds {len(boxes)} in this period"
            + (", none of a source still served" if boxes else "")
            + "; widen --since/--until or wait for readers"
        )
    kept = [boxes[i] for i in served]
    codes: dict[str, int] = {}
    models = _reward_models(kept, codes, known)
    supported = {
        (box.source, slot, target)
        for box in kept
        for slot, (target, propensity) in box.shown.items()
        if propensity > 0
    }
    reports = []
    for name, by_box in lists.items():
        chosen = [by_box[i] for i in served]
        rows = _slot_rows(kept, chosen, models, codes)
        reports.append(PolicyReport(name, estimate(rows), _support(kept, chosen, supported)))
    refused = [r for r in reports if r.support.share < min_support]
    if refused:
        raise LogLacksSupport(_refusal(refused, min_support, len(kept)))
    observed = np.array([len(box.clicked) for box in kept], dtype=np.float64)
    return Evaluation(
        impressions=len(kept),
        skipped=len(boxes) - len(kept),
        clicks=int(observed.sum()),
        observed=Estimate.normal(float(observed.mean()), observed),
        policies=reports,
    )


def _lists(boxes: list[LoggedBox], ranking: Ranking) -> dict[int, list[str]]:
    """Box index -> the ranking's list for it (one call per source, length and hour)."""
    cache: dict[tuple[str, int, float], list[str] | None] = {}
    lists: dict[int, list[str]] = {}
    for i, box in enumerate(boxes):
        key = (box.source, box.length, box.at - box.at % _HOUR)
        if key not in cache:
            try:
                cache[key] = ranking(*key)
            except ArticleNotFound:
                cache[key] = None
        chosen = cache[key]
        if chosen is not None:
            lists[i] = chosen
    return lists


def _code(codes: dict[str, int], slug: str) -> int:
    return codes.setdefault(slug, len(codes))


def _reward_models(
    boxes: list[LoggedBox], codes: dict[str, int], known: PairRatio | None
) -> tuple[RewardModel, ...]:
    """Cross-fitted: the model for even-numbered boxes is fitted on the odd ones, and back."""
    shown = [
        (i, box, slot, target)
        for i, box in enumerate(boxes)
        for slot, (target, _) in box.shown.items()
    ]
    return RewardModel.cross_fitted(
        np.array([_code(codes, box.source) for _, box, _, _ in shown], dtype=np.int64),
        np.array([_code(codes, target) for _, _, _, target in shown], dtype=np.int64),
        np.array([slot for _, _, slot, _ in shown], dtype=np.int64),
        np.array([slot in box.clicked for _, box, slot, _ in shown], dtype=np.float64),
        np.array([i % 2 == 1 for i, _, _, _ in shown], dtype=np.bool_),
        average_pair if known is None else _by_code(codes, known),
    )


def _by_code(codes: dict[str, int], known: PairRatio) -> PairPrior:
    """`known` over the slugs' codes (which grow as the candidates' lists are coded)."""
    slugs: list[str] = []

    def prior(source: int, item: int) -> float:
        if max(source, item) >= len(slugs):
            slugs[:] = codes
        return known(slugs[source], slugs[item])

    return prior


def _slot_rows(
    boxes: list[LoggedBox],
    chosen: list[list[str]],
    models: tuple[RewardModel, ...],
    codes: dict[str, int],
) -> SlotRows:
    """One row per (box, slot of the ranking's list): the ranking is deterministic, so
    π(item at slot) is 1 for its own choice and w = 1 / μ where the box showed that item."""
    impression, slot, weight, click, candidate, logged = [], [], [], [], [], []
    for i, (box, items) in enumerate(zip(boxes, chosen, strict=True)):
        source, model = _code(codes, box.source), models[i % 2]
        for k, target in enumerate(items, start=1):
            shown, propensity = box.shown.get(k, ("", 0.0))
            impression.append(i)
            slot.append(k)
            weight.append(1.0 / propensity if shown == target and propensity > 0 else 0.0)
            click.append(float(k in box.clicked))
            candidate.append(model(source, _code(codes, target), k))
            logged.append(model(source, _code(codes, shown), k) if shown else 0.0)
    return SlotRows(
        impressions=len(boxes),
        impression=np.array(impression, dtype=np.int64),
        slot=np.array(slot, dtype=np.int64),
        weight=np.array(weight, dtype=np.float64),
        click=np.array(click, dtype=np.float64),
        model_candidate=np.array(candidate, dtype=np.float64),
        model_logged=np.array(logged, dtype=np.float64),
    )


def _support(
    boxes: list[LoggedBox], chosen: list[list[str]], supported: set[tuple[str, int, str]]
) -> Support:
    choices = unsupported = impressions = 0
    missing: set[tuple[str, int, str]] = set()
    for box, items in zip(boxes, chosen, strict=True):
        lacking = {(box.source, k, t) for k, t in enumerate(items, start=1)} - supported
        choices += len(items)
        unsupported += len(lacking)
        impressions += bool(lacking)
        missing |= lacking
    return Support(choices, unsupported, len(missing), impressions)


def _refusal(refused: list[PolicyReport], min_support: float, impressions: int) -> str:
    parts = [
        f"{r.name!r}: {r.support.unsupported} of its {r.support.choices} choices "
        f"({r.support.unsupported_items} distinct article-slot pairs, in "
        f"{r.support.impressions} of {impressions} impressions) were never shown"
        for r in refused
    ]
    return (
        f"the impression log lacks support (under {min_support:.0%} of choices shown) for "
        + "; ".join(parts)
        + ": turn exploration on (RECOMMENDER_EXPLORATION) and wait for more of the log, "
        "or lower --min-support knowing the estimate ignores the clicks it cannot see"
    )
