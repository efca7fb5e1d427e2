"""The fallback chain as written in the settings: the steps in order, `off`, per placement, and
a clear error for anything else."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recommender.fallbacks import parse_chain
from recommender.settings import Settings


def test_a_chain_is_its_steps_in_order_or_off() -> None:
    assert parse_chain("popular,newest") == ("popular", "newest")
    assert parse_chain(" Newest , popular ") == ("newest", "popular")
    assert parse_chain("newest") == ("newest",)
    assert parse_chain("OFF") is None


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        ("popular,trending", "unknown fallback step 'trending'"),
        ("", "unknown fallback step ''"),
        ("newest,newest", "fallback step 'newest' repeated"),
    ],
)
def test_anything_else_is_refused_saying_what_is_allowed(chain: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        parse_chain(chain)
    assert "a comma-separated list of popular, newest (each at most once), or off" in str(
        refused.value
    )


def test_placements_have_their_own_chains_and_the_rest_follow_the_default() -> None:
    settings = Settings(fallbacks="newest", placement_fallbacks={"sidebar": "popular", "nl": "off"})
    chains = settings.fallbacks
    assert chains.steps("default") == ("newest",)
    assert chains.steps("sidebar") == ("popular",)
    assert chains.steps("nl") is None
    assert chains.counts_popular
    assert not Settings(fallbacks="newest").fallbacks.counts_popular
    assert not Settings(fallbacks="off").fallbacks.counts_popular


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"fallbacks": "popular,newest,related"}, "unknown fallback step 'related'"),
        ({"placement_fallbacks": {"Side Bar": "newest"}}, "'Side Bar' is not a placement name"),
        ({"placement_fallbacks": {"sidebar": "newest,"}}, "placement 'sidebar': unknown"),
        ({"popular_hours": 0}, "greater than or equal to 1"),
    ],
)
def test_wrong_settings_are_refused_at_start(given: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**given)
