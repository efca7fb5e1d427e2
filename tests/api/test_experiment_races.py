"""Races around an experiment: two workers receiving the same beacons, the nightly reindex
publishing a new version and another host changing the arms, all at once, lose no event and
count none twice, in the click counters (Redis) and in the impression log (files or
PostgreSQL)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.event_log.event_log_factory import open_event_log
from api.serving.exploration_draw import shown_at
from api.serving.feedback_tokens import token_header
from index.state.postgres_database import PostgresState
from index.state.state_stores import open_stores
from recommender.settings import Settings
from tests.support.helpers import ADMIN_TOKEN, build_fake_index, wait_for

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BEACON = {"Content-Type": "text/plain;charset=UTF-8"}
ARMS = [
    {"name": "holdout", "share": 0.5},
    {"name": "wide", "share": 0.5, "settings": {"diversity": 0.5, "exploration": 0.3}},
]
SOURCES = ["volcano-0", "election-1", "football-2", "vaccine-0"]
BOXES = 30
pytestmark = pytest.mark.redis


@pytest.fixture(params=["files", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, redis_namespace: str
) -> Settings:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    built, _ = build_fake_index(
        tmp_path / "data",
        admin_token=ADMIN_TOKEN,
        database_url=url,
        redis_url=redis_url,
        cache_namespace=redis_namespace,
        events_namespace=redis_namespace + "events:",
        event_rate_per_second=0,
        reload_interval_seconds=0.05,
        exploration=0.0,
    )
    return built


def box_beacons(body: dict[str, Any], arm: dict[str, Any], impression: str) -> list[str]:
    """The beacons of box `impression` showing `arm`'s list: its impressions, and a click on
    slot 2 for one box in three."""
    header = token_header(arm["feedback"]["token"])
    assert header is not None
    entries = [item["slug"] for item in arm["items"] + arm.get("reserves", [])]
    events = []
    for slot in range(1, len(arm["items"]) + 1):
        at = shown_at(header.exploration, impression, slot)
        assert at is not None
        events.append(
            {
                "type": "impression",
                "source": body["slug"],
                "target": entries[at.entry - 1],
                "slot": slot,
                "token": arm["feedback"]["token"],
                "impression": impression,
            }
        )
    beacons = [json.dumps({"events": events})]
    if int(impression[-4:]) % 3 == 0:
        beacons.append(json.dumps({"events": [events[1] | {"type": "click"}]}))
    return beacons


def test_two_workers_a_reindex_and_an_arm_change_at_once_count_every_event_once(
    settings: Settings, tmp_path: Path
) -> None:
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        assert first.put("/v1/admin/experiment", json={"arms": ARMS}, headers=AUTH).is_success
        wait_for(
            lambda: second.app.state.services.experiments.current() is not None,  # type: ignore[attr-defined]
            "the second worker to see the experiment",
        )
        beacons: list[str] = []
        expected: Counter[str] = Counter()
        for number in range(BOXES):
            source = SOURCES[number % len(SOURCES)]
            body = first.get(
                f"/v1/articles/{source}/related", params={"limit": 3, "explore": "true"}
            ).json()
            impression = f"race-impression-{number:04d}"
            arm = next(
                a for a in body["arms"] if a["feedback"]["arm"] == arm_of(settings, impression)
            )
            made = box_beacons(body, arm, impression)
            beacons += made
            for beacon in made:
                for event in json.loads(beacon)["events"]:
                    expected[event["type"]] += 1
        accepted = Counter[str]()
        lock = threading.Lock()

        def deliver(client: TestClient) -> None:
            for beacon in beacons:
                receipt = client.post("/v1/events", content=beacon, headers=BEACON).json()
                with lock:
                    accepted[json.loads(beacon)["events"][0]["type"]] += receipt["accepted"]

        published: list[str] = []

        def reindex() -> None:
            _, summary = build_fake_index(
                settings.data_dir, database_url=settings.index.database.url
            )
            published.append(summary.version)

        def change_arms() -> None:
            stores = open_stores(settings.index)
            try:
                stores.experiment.write(
                    [{"name": "holdout", "share": 0.8}, {**ARMS[1], "share": 0.2}], "ben"
                )
            finally:
                stores.close()

        threads = [
            threading.Thread(target=deliver, args=(first,)),
            threading.Thread(target=deliver, args=(second,)),
            threading.Thread(target=reindex),
            threading.Thread(target=change_arms),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        writers = [client.app.state.services.event_log for client in (first, second)]  # type: ignore[attr-defined]
        wait_for(
            lambda: all(writer.pending() == 0 for writer in writers),
            "the impression log's writers to catch up",
        )
        holders = [client.app.state.services.holder for client in (first, second)]  # type: ignore[attr-defined]
        wait_for(
            lambda: all(h.current.version.id == published[0] for h in holders),
            "both workers to serve the new version",
        )
        totals = first.get("/v1/stats/ctr", headers=AUTH).json()["totals"]
    assert accepted == expected
    assert (totals["impressions"], totals["clicks"]) == (expected["impression"], expected["click"])
    database = settings.index.database
    postgres = PostgresState(database) if database.url is not None else None
    try:
        logged = list(
            open_event_log(settings.data_dir, postgres).read(date(2000, 1, 1), date(2100, 1, 1))
        )
    finally:
        if postgres is not None:
            postgres.close()
    assert Counter(event.type for event in logged) == expected
    assert len({event.key() for event in logged}) == len(logged)
    assert {event.arm for event in logged} == {"holdout", "wide"}
    assert all(event.arm == arm_of(settings, event.impression) for event in logged)


def arm_of(settings: Settings, impression: str) -> str:
    """The arm of `ARMS` that the box `impression` draws."""
    from api.serving.experiment_arms import experiment_of
    from index.state.experiment_store import StoredExperiment

    experiment = experiment_of(StoredExperiment(1, ARMS), settings)
    assert experiment is not None
    return experiment.arm_of(impression).name
