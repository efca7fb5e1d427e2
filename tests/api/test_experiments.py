"""Built-in A/B experiments through the service: the admin API sets, reads and stops the
experiment (validated, If-Match); while one runs, a list asked for by a client that draws
(`explore=true`) carries every arm's list, each signed for its arm's draws, and a beacon counts
only with the token of the arm its impression id draws; with no experiment, and for clients
that do not draw, every response is today's, byte for byte, ETag included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.event_log.file_event_log import FileEventLog
from api.serving.experiment_arms import Experiment, experiment_of
from api.serving.exploration_draw import SHARE_STEPS, arm_draw, shown_at
from api.serving.feedback_tokens import token_header
from api.serving.related_answers import related_cache_key
from index.state.experiment_store import StoredExperiment
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from tests.support.helpers import ADMIN_TOKEN, build_fake_index, post_events, wait_for

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PATH = "/v1/admin/experiment"
RELATED = "/v1/articles/volcano-0/related"
ARMS = [
    {"name": "diverse", "share": 0.3, "settings": {"diversity": 0.9, "exploration": 0.5}},
    {"name": "holdout", "share": 0.7},
]
IDS = [f"fixed-impression-{i:06d}" for i in range(300)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    built, _ = build_fake_index(
        tmp_path / "data", admin_token=ADMIN_TOKEN, redis_url=None, exploration=0.0
    )
    return built


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def put(client: TestClient, arms: Any, **headers: str) -> Any:
    return client.put(PATH, json={"arms": arms}, headers={**AUTH, **headers})


def send(client: TestClient, events: list[dict[str, Any]]) -> tuple[int, int]:
    """Post `events` as beacons of at most 50; (accepted, refused as invalid_token)."""
    accepted = refused = 0
    for start in range(0, len(events), 50):
        receipt = post_events(client, events[start : start + 50])
        accepted += receipt["accepted"]
        refused += receipt["refused"].get("invalid_token", 0)
    return accepted, refused


def test_the_admin_api_sets_reads_and_stops_the_experiment(client: TestClient) -> None:
    assert client.get(PATH).status_code == 401
    assert put(client, ARMS, Authorization="Bearer wrong").status_code == 403
    empty = client.get(PATH, headers=AUTH)
    assert empty.json() == {
        "version": 0, "running": False, "arms": [], "actor": None, "changed_at": None
    }  # fmt: skip
    assert empty.headers["etag"] == '"0"'
    created = put(client, ARMS, **{"X-Actor": "ana", "If-Match": '"0"'})
    assert created.status_code == 200, created.text
    assert created.headers["etag"] == '"1"'
    read = client.get(PATH, headers=AUTH).json()
    assert read["running"] and read["actor"] == "ana" and read["version"] == 1
    assert [arm["name"] for arm in read["arms"]] == ["diverse", "holdout"]
    stopped = client.delete(PATH, headers={**AUTH, "If-Match": '"1"'})
    assert stopped.status_code == 200 and stopped.json()["running"] is False
    assert stopped.headers["etag"] == '"2"'


def test_a_change_based_on_an_old_version_is_412(client: TestClient) -> None:
    assert put(client, ARMS).status_code == 200
    stale = put(client, ARMS, **{"If-Match": '"0"'})
    assert stale.status_code == 412
    assert stale.json()["error"] == "experiment_changed"
    assert "version 1, not 0" in stale.json()["detail"]
    assert client.delete(PATH, headers={**AUTH, "If-Match": '"0"'}).status_code == 412
    assert put(client, ARMS, **{"If-Match": "seven"}).status_code == 422


def with_b(settings: dict[str, Any], holdout: float = 0.5, b: float = 0.5) -> list[Any]:
    """The holdout and an arm `b` that sets `settings`."""
    return [{"name": "holdout", "share": holdout}, {"name": "b", "share": b, "settings": settings}]


HALF = {"name": "holdout", "share": 0.5}


@pytest.mark.parametrize(
    ("arms", "says"),
    [
        (with_b({}, b=0.4), "sum to 1"),
        ([{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}], "'holdout' arm is missing"),
        ([{"name": "holdout", "share": 1.0}], "2 to 8 arms"),
        ([HALF | {"settings": {"diversity": 0.2}}, {"name": "b", "share": 0.5}], "no settings"),
        (with_b({"nope": 1}), "arm 'b': unknown setting 'nope'"),
        (with_b({"name_boost": 1}), "name_boost is fixed when the index is built"),
        (with_b({"cache_ttl_seconds": 1}), "cache_ttl_seconds does not change the ranking"),
        (with_b({"diversity": 2}), "arm 'b': index.ranking.diversity"),
        (with_b({"exploration": 0.00005}), "exploration share goes in steps"),
        ([HALF, {"name": "B!", "share": 0.5}], "arm 2: name"),
        ([HALF, HALF], "named twice"),
        (with_b({}, holdout=0.99995, b=0.00005), "steps of 0.0001"),
    ],
)
def test_an_experiment_that_cannot_run_is_a_422_naming_the_problem(
    client: TestClient, arms: list[dict[str, Any]], says: str
) -> None:
    response = put(client, arms)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_experiment"
    assert says in response.json()["detail"]
    assert client.get(PATH, headers=AUTH).json()["version"] == 0


def test_without_an_experiment_or_a_drawing_client_every_response_is_todays(
    client: TestClient,
) -> None:
    def answers() -> list[tuple[bytes, str]]:
        found = []
        for route in ("related", "related.html"):
            for params in ({"limit": "3"}, {"limit": "3", "explore": "true"}):
                response = client.get(f"/v1/articles/volcano-0/{route}", params=params)
                found.append((response.content, response.headers["etag"]))
        return found

    today = answers()
    assert put(client, ARMS).status_code == 200
    running = answers()
    # Clients that do not draw get today's bytes; those that draw get every arm's lists.
    assert running[0] == today[0] and running[2] == today[2]
    assert running[1][1] != today[1][1] and running[3][1] != today[3][1]
    assert client.delete(PATH, headers=AUTH).status_code == 200
    assert answers() == today


def test_the_cache_key_changes_only_with_an_experiment() -> None:
    query = RelatedQuery(limit=4)
    plain = related_cache_key("tag", "a", query)
    assert related_cache_key("tag", "a", query, experiment=None) == plain
    assert related_cache_key("tag", "a", query, experiment="3.1000") != plain
    assert related_cache_key("tag", "a", query, experiment="3.1000") != related_cache_key(
        "tag", "a", query, experiment="4.1000"
    )


def test_a_drawing_client_gets_every_arms_list_each_signed_for_its_draws(
    client: TestClient, settings: Settings
) -> None:
    plain = client.get(RELATED, params={"limit": 3}).json()
    assert put(client, ARMS).status_code == 200
    body = client.get(RELATED, params={"limit": 3, "explore": "true"}).json()
    holdout, diverse = body["arms"]
    assert holdout["feedback"]["arm"] == "holdout" and diverse["feedback"]["arm"] == "diverse"
    assert (holdout["feedback"]["share"], diverse["feedback"]["share"]) == (0.7, 0.3)
    # The holdout is today's ranking and the top level of the body.
    assert holdout["items"] == plain["items"] == body["items"]
    assert body["feedback"] == holdout["feedback"] and "reserves" not in holdout
    # The other arm ranks with its settings and explores at its share.
    assert diverse["feedback"]["exploration"] == 0.5 and len(diverse["reserves"]) == 3
    assert token_header(holdout["feedback"]["token"]).draws == (0, 7000)  # type: ignore[union-attr]
    assert token_header(diverse["feedback"]["token"]).draws == (7000, 10_000)  # type: ignore[union-attr]
    html = client.get(RELATED + ".html", params={"limit": 3, "explore": "true"}).text
    outer, _, inner = html.partition('<template class="related-articles-arms">')
    assert f'data-feedback-token="{holdout["feedback"]["token"]}"' in outer
    assert 'data-feedback-share="0.7"' in outer
    assert f'data-feedback-token="{diverse["feedback"]["token"]}"' in inner
    assert 'data-feedback-arm="diverse" data-feedback-share="0.3"' in inner


def test_a_beacon_counts_only_with_the_arm_its_impression_id_draws(
    client: TestClient, settings: Settings
) -> None:
    assert put(client, ARMS).status_code == 200
    body = client.get(RELATED, params={"limit": 3, "explore": "true"}).json()
    holdout, diverse = body["arms"]
    experiment = experiment_of(StoredExperiment(1, ARMS, "ana", 0.0), settings)
    assert isinstance(experiment, Experiment)
    drawn = {impression: experiment.arm_of(impression).name for impression in IDS}
    assert 0.2 < sum(name == "diverse" for name in drawn.values()) / len(IDS) < 0.4

    def beacon(arm: dict[str, Any], impression: str) -> dict[str, Any]:
        """Slot 1 of the box `impression` as it showed `arm`'s list (which may explore)."""
        entries = [item["slug"] for item in arm["items"] + arm.get("reserves", [])]
        header = token_header(arm["feedback"]["token"])
        at = shown_at(None if header is None else header.exploration, impression, 1)
        assert at is not None
        target = entries[at.entry - 1]
        event = {"type": "impression", "source": "volcano-0", "target": target, "slot": 1}
        return event | {"token": arm["feedback"]["token"], "impression": impression}

    right = [beacon(holdout if drawn[i] == "holdout" else diverse, i) for i in IDS]
    wrong = [beacon(diverse if drawn[i] == "holdout" else holdout, i) for i in IDS]
    for events, accepted in ((wrong, 0), (right, len(IDS))):
        assert send(client, events) == (accepted, len(IDS) - accepted)
    writer = client.app.state.services.event_log  # type: ignore[attr-defined]
    wait_for(lambda: writer.pending() == 0, "the impression log's writer to catch up")
    logged = list(FileEventLog(settings.data_dir).read(date(2000, 1, 1), date(2100, 1, 1)))
    assert sorted((e.impression, e.arm) for e in logged) == sorted(drawn.items())
    # A list cached before the experiment changed still counts for the arm it was signed for.
    changed = [{"name": "holdout", "share": 0.5}, {"name": "other", "share": 0.5}]
    assert put(client, changed).status_code == 200
    later = [f"later-impression-{i:05d}" for i in range(40)]
    in_range = [i for i in later if 7000 <= arm_draw(i) < SHARE_STEPS]
    assert in_range and send(client, [beacon(diverse, i) for i in in_range]) == (len(in_range), 0)


def test_the_arm_draw_is_independent_of_the_exploration_draw() -> None:
    from api.serving.exploration_draw import ExplorationPlan, draw

    plan = ExplorationPlan(5000, 4, 3, frozenset())
    ids = [f"independence-{i:06d}" for i in range(4000)]
    low = [i for i in ids if arm_draw(i) < SHARE_STEPS // 2]
    explored_low = sum(draw(plan, i) is not None for i in low) / len(low)
    explored_all = sum(draw(plan, i) is not None for i in ids) / len(ids)
    assert abs(explored_low - explored_all) < 0.03
    assert re.fullmatch(r"\d+", str(arm_draw("x"))) and 0 <= arm_draw("x") < SHARE_STEPS


def test_each_experiment_gets_its_own_arm_rankers_and_cache_tag(client: TestClient) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    served = services.holder.require()
    three = [*ARMS[:1], {"name": "other", "share": 0.2}, {"name": "holdout", "share": 0.5}]
    two = experiment_of(StoredExperiment(1, ARMS, "ana", 10.0), services.settings)
    again = experiment_of(StoredExperiment(1, three, "ana", 20.0), services.settings)
    assert two is not None and again is not None and two.tag != again.tag
    assert len(services.experiments.rankers(served, two)) == 2
    assert len(services.experiments.rankers(served, again)) == 3
