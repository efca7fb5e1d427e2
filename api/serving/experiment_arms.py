"""Built-in A/B experiments: arms, their shares of the impression ids, and each arm's ranking.

An experiment splits the boxes of clients that draw (`explore=true`: widget.js) between arms,
each a ranking configuration: ranking settings changed from the service's
(`api.serving.ranking_overrides`, the same ones `evaluate-policy --candidate` takes) and its
own exploration share. The permanent `holdout` arm changes nothing: today's ranking. Lists stay
the same bytes for every reader, so the server cannot choose an arm per reader: while an
experiment runs, a list asked for with `explore=true` carries every arm's list, each with its
own signed token, and the client picks one from its impression id (`arm_draw`, the exploration
draw's hash with another salt). Each arm owns a range of the draw, signed into its token, so
the service checks a beacon's arm by drawing again, whatever experiment runs by then.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from api.event_log.policy_evaluation import reranked
from api.serving.exploration_draw import SHARE_STEPS, arm_draw
from api.serving.ranking_overrides import InvalidOverride, with_overrides
from index.index_errors import StoreUnavailable
from index.serving.recommender_engine import Recommender
from index.state.experiment_store import ExperimentStore, StoredExperiment
from recommender.errors import InvalidExperiment
from recommender.settings import Settings

log = logging.getLogger(__name__)

#: The permanent arm that keeps the service's own ranking, to compare every other arm with.
HOLDOUT = "holdout"
#: What the holdout ranks with besides the service's settings: what keeps it content-only
#: whatever the service's defaults are (a click signal's weight at 0 once there is one).
HOLDOUT_SETTINGS: dict[str, Any] = {}
#: What an arm may set besides the ranking settings.
ARM_ALSO = ("exploration",)
MAX_ARMS = 8
#: An arm's name, as a token's header and the impression log carry it.
ARM_NAME = re.compile(r"[a-z0-9_-]{1,32}")


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm: the draws [`start`, `start` + `share`) of 0..`SHARE_STEPS` - 1 are its boxes."""

    name: str
    share: int
    """In steps of 1/`SHARE_STEPS`."""
    changes: dict[str, Any]
    """The settings it changes, by flat name, as set."""
    settings: Settings
    """The service's settings with `changes` applied."""
    start: int

    @property
    def end(self) -> int:
        return self.start + self.share

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "share": self.share / SHARE_STEPS, "settings": self.changes}


@dataclass(frozen=True, slots=True)
class Experiment:
    version: int
    arms: tuple[Arm, ...]
    """The holdout first, then the others as set: the order of their draw ranges."""
    actor: str | None
    started_at: float

    @property
    def tag(self) -> str:
        """Names this experiment in cache keys: its version and when it was set (a database
        created again counts versions from 1 again, never at the same moment)."""
        return f"{self.version}.{round(self.started_at * 1000)}"

    def arm_of(self, impression: str) -> Arm:
        """The arm whose range holds the draw of `impression`."""
        drawn = arm_draw(impression)
        return next(arm for arm in self.arms if arm.start <= drawn < arm.end)


def parse_arms(payload: Any, current: Settings) -> list[Arm]:
    """The arms of `payload` (a list of `{"name", "share", "settings"}`) over the service's
    `current` settings, holdout first; raises InvalidExperiment naming the problem."""
    if not isinstance(payload, list) or not 2 <= len(payload) <= MAX_ARMS:
        raise InvalidExperiment(f"arms: a list of 2 to {MAX_ARMS} arms, the holdout among them")
    arms: list[Arm] = []
    for number, given in enumerate(payload, start=1):
        if not isinstance(given, dict) or not set(given) <= {"name", "share", "settings"}:
            raise InvalidExperiment(f"arm {number}: an object of name, share and settings")
        name, share, changes = given.get("name"), given.get("share"), given.get("settings", {})
        if not isinstance(name, str) or not ARM_NAME.fullmatch(name):
            raise InvalidExperiment(f"arm {number}: name: 1-32 of a-z 0-9 _ -")
        if any(arm.name == name for arm in arms):
            raise InvalidExperiment(f"arm {name!r}: named twice")
        numeric = isinstance(share, int | float) and not isinstance(share, bool)
        steps = float(share) * SHARE_STEPS if numeric else -1.0  # type: ignore[arg-type]
        if not 0 < steps <= SHARE_STEPS or abs(steps - round(steps)) > 1e-6:
            raise InvalidExperiment(f"arm {name!r}: share: above 0, at most 1, in steps of 0.0001")
        if not isinstance(changes, dict):
            raise InvalidExperiment(f"arm {name!r}: settings: an object of NAME: value")
        if name == HOLDOUT and changes:
            raise InvalidExperiment(f"arm {HOLDOUT!r}: keeps the service's ranking: no settings")
        try:
            settings = with_overrides(
                current, HOLDOUT_SETTINGS if name == HOLDOUT else changes, ARM_ALSO
            )
        except InvalidOverride as exc:
            raise InvalidExperiment(f"arm {name!r}: {exc}") from None
        arms.append(Arm(name, round(steps), dict(changes), settings, 0))
    if sum(arm.share for arm in arms) != SHARE_STEPS:
        raise InvalidExperiment("arms: the shares must sum to 1")
    if not any(arm.name == HOLDOUT for arm in arms):
        raise InvalidExperiment(f"arms: the {HOLDOUT!r} arm is missing")
    ordered = sorted(arms, key=lambda arm: arm.name != HOLDOUT)
    start = 0
    placed = []
    for arm in ordered:
        placed.append(Arm(arm.name, arm.share, arm.changes, arm.settings, start))
        start += arm.share
    return placed


def experiment_json(stored: StoredExperiment) -> dict[str, Any]:
    """The admin API's view of the stored experiment (`arms` as set; none: no experiment)."""
    return {
        "version": stored.version,
        "running": stored.arms is not None,
        "arms": stored.arms or [],
        "actor": stored.actor,
        "changed_at": stored.changed_at,
    }


def experiment_of(stored: StoredExperiment, current: Settings) -> Experiment | None:
    """The experiment `stored` holds over the `current` settings (None: none runs)."""
    if stored.arms is None:
        return None
    arms = parse_arms(stored.arms, current)
    return Experiment(stored.version, tuple(arms), stored.actor, stored.changed_at or 0.0)


class ExperimentArms:
    """The experiment a worker serves (read again when the store's generation moves; the last
    one known while the shared database is down) and each arm's recommender."""

    def __init__(self, store: ExperimentStore, settings: Settings) -> None:
        self.store = store
        self._settings = settings
        self._generation: str | None = None
        self._experiment: Experiment | None = None
        self._rankers: tuple[Recommender, Experiment, list[Recommender]] | None = None

    def current(self) -> Experiment | None:
        """The experiment running now, or None."""
        generation = self.store.generation()
        if generation != self._generation:
            try:
                stored = self.store.read()
            except StoreUnavailable:
                return self._experiment
            try:
                self._experiment = experiment_of(stored, self._settings)
            except InvalidExperiment as exc:  # set under other settings than this worker's
                log.error("the stored experiment cannot run here, serving none: %s", exc)
                self._experiment = None
            self._generation = generation
        return self._experiment

    def weighs_clicks(self) -> bool:
        """Whether an arm of the running experiment weighs readers' clicks (blocking: the store
        may be read)."""
        experiment = self.current()
        return experiment is not None and any(
            arm.settings.index.ranking.click_weight > 0 for arm in experiment.arms
        )

    def change(
        self, arms: list[dict[str, Any]] | None, actor: str, based_on: int | None
    ) -> StoredExperiment:
        """Check `arms` (None: stop the experiment) and store them if the experiment is still at
        version `based_on` (None: whatever it is); blocking. Raises InvalidExperiment and
        ExperimentChanged."""
        if arms is not None:
            parse_arms(arms, self._settings)
        return self.store.write(arms, actor, based_on)

    def rankers(self, served: Recommender, experiment: Experiment) -> list[Recommender]:
        """Each arm's recommender over `served` (in the order of `experiment.arms`)."""
        kept = self._rankers
        if kept is not None and kept[0] is served and kept[1] is experiment:
            return kept[2]
        ranking = self._settings.index.ranking
        made = [
            served
            if arm.settings.index.ranking == ranking
            else reranked(served, self._settings, arm.settings)
            for arm in experiment.arms
        ]
        self._rankers = (served, experiment, made)
        return made
