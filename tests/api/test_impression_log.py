"""The impression log through the service: accepted impressions (each item with its position
and propensity) and clicks are logged with their placement, arm and version; refused ones are
not; placement= is validated, signed and keyed; the log keeps working while Redis is down, and
two app instances logging the same beacons keep each once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import LoggedEvent
from recommender.settings import Settings
from tests.support.helpers import ADMIN_TOKEN, box_events, build_fake_index, post_events, wait_for
from tests.support.redis_server import RedisProcess

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    built, _ = build_fake_index(tmp_path / "data", admin_token=ADMIN_TOKEN, redis_url=None)
    return built


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def logged(client: TestClient, data_dir: Path) -> list[LoggedEvent]:
    """What the log holds once the app's writer has written everything it was given."""
    writer = client.app.state.services.event_log  # type: ignore[attr-defined]
    wait_for(lambda: writer.pending() == 0, "the impression log's writer to catch up")
    return list(FileEventLog(data_dir).read(date(2000, 1, 1), date(2100, 1, 1)))


def metric(client: TestClient, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", client.get("/metrics").text, re.MULTILINE)
    assert found is not None, name
    return float(found[1])


def test_accepted_impressions_and_clicks_are_logged_with_what_ranked_them(
    client: TestClient, settings: Settings
) -> None:
    box = box_events(client, "volcano-0", limit=3, placement="article-end")
    clicked = box_events(
        client, "volcano-0", "click", [2], limit=3, placement="article-end",
        impression=box[0]["impression"],
    )  # fmt: skip
    forged = [{**box[0], "impression": "forged-impression-01", "token": "v.default.1.AAAA"}]
    assert post_events(client, [*box, *clicked, *forged])["accepted"] == 4
    assert post_events(client, box)["accepted"] == 0  # a replay is refused, and not logged again
    events = logged(client, settings.data_dir)
    version = client.get("/v1/articles/volcano-0/related").json()["index_version"]
    assert [(e.type, e.position, e.target, e.propensity) for e in events] == [
        *(("impression", e["slot"], e["target"], 1.0) for e in box),
        ("click", 2, box[1]["target"], None),
    ]
    assert {(e.source, e.impression, e.placement, e.arm, e.version) for e in events} == {
        ("volcano-0", box[0]["impression"], "article-end", "default", version)
    }
    assert metric(client, "recommender_event_log_written_total") == 4
    assert metric(client, "recommender_event_log_dropped_total") == 0
    assert metric(client, "recommender_event_log_failed_total") == 0


def test_without_placement_the_list_is_the_default_placements(client: TestClient) -> None:
    plain = client.get("/v1/articles/volcano-0/related?limit=3")
    default = client.get("/v1/articles/volcano-0/related?limit=3&placement=default")
    assert plain.content == default.content and plain.headers["etag"] == default.headers["etag"]
    feedback = plain.json()["feedback"]
    assert set(feedback) == {"token", "arm"} and feedback["token"].count(".") == 3
    placed = client.get("/v1/articles/volcano-0/related?limit=3&placement=sidebar_2")
    assert placed.json()["feedback"]["placement"] == "sidebar_2"
    assert placed.json()["items"] == plain.json()["items"]
    assert placed.headers["etag"] != plain.headers["etag"]  # its own cache entry and ETag
    assert placed.json()["feedback"]["token"] != feedback["token"]
    assert ".sidebar_2." in placed.json()["feedback"]["token"]


@pytest.mark.parametrize("placement", ["Sidebar", "a b", "x" * 33, "", "é"])
def test_a_bad_placement_is_a_422_naming_it(client: TestClient, placement: str) -> None:
    for route in ("related", "related.html"):
        response = client.get(f"/v1/articles/volcano-0/{route}", params={"placement": placement})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/json"
        assert "placement" in response.text


def test_the_fragment_carries_its_placement_and_only_then(client: TestClient) -> None:
    plain = client.get("/v1/articles/volcano-0/related.html?limit=3").text
    assert "data-feedback-placement" not in plain
    placed = client.get("/v1/articles/volcano-0/related.html?limit=3&placement=article-end").text
    assert 'data-feedback-placement="article-end"' in placed
    token = re.search(r'data-feedback-token="([^"]+)"', placed)
    assert token is not None
    json_token = client.get("/v1/articles/volcano-0/related?limit=3&placement=article-end")
    assert json_token.json()["feedback"]["token"] == token[1]


def test_an_event_naming_another_placement_than_its_token_is_refused(
    client: TestClient, settings: Settings
) -> None:
    box = box_events(client, "volcano-0", limit=2, placement="article-end")
    receipt = post_events(client, [{**e, "placement": "sidebar"} for e in box])
    assert receipt == {"accepted": 0, "ignored": 0, "refused": {"invalid_token": 2}}
    assert post_events(client, [{**e, "placement": "article-end"} for e in box])["accepted"] == 2
    assert {e.placement for e in logged(client, settings.data_dir)} == {"article-end"}


@pytest.mark.redis
def test_events_are_logged_once_while_redis_is_down(
    tmp_path: Path, redis_process: RedisProcess
) -> None:
    settings, _ = build_fake_index(
        tmp_path / "data", admin_token=ADMIN_TOKEN, redis_url=redis_process.url
    )
    with TestClient(create_app(settings)) as client:
        box = box_events(client, "volcano-0", limit=3)
        redis_process.kill()
        assert post_events(client, box)["accepted"] == 0  # the counters cannot take them now...
        assert post_events(client, box)["accepted"] == 0
        events = logged(client, settings.data_dir)  # ...the log does, once
        assert sorted(e.position for e in events) == [1, 2, 3]
        assert client.get("/v1/stats/ctr", headers=AUTH).json()["available"] is False


def test_two_app_instances_logging_the_same_beacons_keep_each_once(settings: Settings) -> None:
    with (
        TestClient(create_app(settings)) as first,
        TestClient(create_app(settings)) as second,
    ):
        boxes = [box_events(first, "volcano-0", limit=4) for _ in range(10)]
        # Each app answers once before the race: FastAPI builds a route's validators on first
        # use, and two apps doing so in two threads at once trip over pydantic's shared state.
        for app_client in (first, second):
            assert post_events(app_client, [{**boxes[0][0], "token": None}])["accepted"] == 0
        # Each instance's own (memory) counters see every beacon as new: both accept them all.
        with ThreadPoolExecutor(4) as pool:
            receipts = list(
                pool.map(
                    lambda job: post_events(*job), [(c, b) for b in boxes for c in (first, second)]
                )
            )
        assert sum(r["accepted"] for r in receipts) == 80
        logged(first, settings.data_dir)
        events = logged(second, settings.data_dir)
    assert len(events) == 40
    assert len({e.key() for e in events}) == 40
