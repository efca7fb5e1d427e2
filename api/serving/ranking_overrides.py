"""Ranking settings changed from the service's: what an off-policy candidate
(`recommender evaluate-policy --candidate`) and an A/B experiment's arm may change, checked
once for both."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from recommender.settings import ENV_PREFIX, Settings, ranking_setting_names

#: Ranking settings that cannot change without a reindex (fixed when the version's lexical
#: model is fitted).
FIXED_AT_REINDEX = frozenset({"name_boost"})


class InvalidOverride(ValueError):
    """A change that is not a ranking setting, or not a valid value: the message says which."""


def flat_name(name: str) -> str:
    """A setting's flat name from its flat or environment name (`RECOMMENDER_DIVERSITY`)."""
    return name.strip().lower().removeprefix(ENV_PREFIX.lower())


def overridable(also: Collection[str] = ()) -> list[str]:
    """The flat names a change may set: the ranking settings a served index can take, and
    `also`."""
    return [n for n in ranking_setting_names() if n not in FIXED_AT_REINDEX] + list(also)


def with_overrides(
    current: Settings, changes: Mapping[str, Any], also: Collection[str] = ()
) -> Settings:
    """`current` with `changes` (by flat or environment name) applied and validated again;
    beyond the ranking settings, those named in `also` may change. Raises InvalidOverride."""
    allowed = overridable(also)
    flat_changes: dict[str, Any] = {}
    for name, value in changes.items():
        flat = flat_name(name)
        if flat not in current.flat():
            raise InvalidOverride(f"unknown setting {name!r}")
        if flat in FIXED_AT_REINDEX:
            raise InvalidOverride(
                f"{flat} is fixed when the index is built; reindex with it to evaluate it"
            )
        if flat not in allowed:
            raise InvalidOverride(
                f"{flat} does not change the ranking; one may set {', '.join(allowed)}"
            )
        flat_changes[flat] = value
    try:
        return current.replaced(**flat_changes)
    except ValueError as exc:  # pydantic's ValidationError
        first = str(exc).splitlines()[1:3]
        raise InvalidOverride(" ".join(s.strip() for s in first)) from None
