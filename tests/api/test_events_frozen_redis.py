"""Events while Redis is frozen (SIGSTOP) or slow (`CLIENT PAUSE`): each beacon is answered
within what RECOMMENDER_EVENTS_TIMEOUT_MS allows, its events are dropped, counted in /metrics and
logged once, and counting resumes when Redis is back.

The bound is read from the app's own latency histogram, with a bucket far above the timeout: a
busy machine cannot fail it, an unbounded wait on a frozen Redis (which never answers) would.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from api.app import create_app
from recommender.settings import Settings
from tests.support.helpers import ADMIN_TOKEN, box_events, build_fake_index, wait_for
from tests.support.redis_server import RedisProcess
from tests.support.servers import running_server

pytestmark = [pytest.mark.redis, pytest.mark.timing]

TIMEOUT_MS = 50
#: A bucket of `recommender_request_seconds`: 50 times the timeout.
BOUND = "2.5"
BEACON = {"Content-Type": "text/plain;charset=UTF-8"}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def batch(client: httpx.Client) -> str:
    """The impressions of a new box of two on volcano-0's page (each box counts once)."""
    return json.dumps({"events": box_events(client, "volcano-0", limit=2)})


@pytest.fixture
def served(tmp_path: Path, redis_process: RedisProcess) -> Iterator[httpx.Client]:
    settings: Settings
    settings, _ = build_fake_index(
        tmp_path / "data",
        admin_token=ADMIN_TOKEN,
        redis_url=redis_process.url,
        events_timeout_ms=TIMEOUT_MS,
    )
    with (
        running_server(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=10) as client,  # an unbounded wait fails here
    ):
        yield client


def metric(client: httpx.Client, prefix: str) -> float:
    """The sum of the /metrics samples whose line starts with `prefix`."""
    lines = client.get("/metrics").text.splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith(prefix))


def events_within(client: httpx.Client, le: str) -> tuple[float, float]:
    """(answered event batches, those the app timed within `le` seconds)."""
    count = 'recommender_request_seconds_count{method="POST",route="/v1/events"'
    bucket = f'recommender_request_seconds_bucket{{le="{le}",method="POST",route="/v1/events"'
    return metric(client, count), metric(client, bucket)


def impressions(client: httpx.Client) -> int:
    report = client.get("/v1/stats/ctr", params={"slug": "volcano-0"}, headers=AUTH).json()
    assert report["available"] is True, report
    count: int = report["totals"]["impressions"]
    return count


def pause_clients(redis_process: RedisProcess) -> Callable[[], None]:
    def pause() -> None:
        admin = redis.Redis.from_url(redis_process.url, socket_timeout=2)
        try:
            admin.client_pause(3000, all=True)
        finally:
            admin.close()

    return pause


@pytest.mark.parametrize("outage", ["frozen", "paused"])
def test_events_are_dropped_counted_and_logged_without_holding_the_beacon(
    served: httpx.Client,
    redis_process: RedisProcess,
    caplog: pytest.LogCaptureFixture,
    outage: str,
) -> None:
    caplog.set_level(logging.INFO, logger="api.stores.redis_event_store")
    # Warm first: on a busy box the first call of a new connection may take over 50 ms.
    wait_for(
        lambda: (
            served.post("/v1/events", content=batch(served), headers=BEACON).status_code == 202
            and impressions(served) >= 2
        ),
        "events counted before the outage",
    )
    counted_before = impressions(served)
    dropped_before = metric(served, "recommender_events_dropped_total")
    bodies = [batch(served) for _ in range(5)]  # the lists are read before the outage

    if outage == "frozen":
        redis_process.pause()  # SIGSTOP: connections accepted, nothing answers
    else:
        pause_clients(redis_process)()  # CLIENT PAUSE: Redis up, every client waits
    try:
        answers = [served.post("/v1/events", content=body, headers=BEACON) for body in bodies]
    finally:
        if outage == "frozen":
            redis_process.resume()
    assert [a.status_code for a in answers] == [202] * 5
    dropped = metric(served, "recommender_events_dropped_total") - dropped_before
    assert dropped == 10, "every event of every batch during the outage is dropped and counted"
    batches, bounded = events_within(served, BOUND)
    assert batches >= 6 and bounded == batches, f"{batches - bounded} batches took over {BOUND} s"
    warnings = [
        r for r in caplog.records
        if r.name == "api.stores.redis_event_store" and r.levelno == logging.WARNING
    ]  # fmt: skip
    assert len(warnings) == 1 and "events are dropped" in warnings[0].getMessage(), caplog.text

    # Back: new events count again (the guard probes after its backoff), whole batches at a time.
    deadline = time.monotonic() + 30
    while True:
        served.post("/v1/events", content=batch(served), headers=BEACON)
        counted = served.get("/v1/stats/ctr", params={"slug": "volcano-0"}, headers=AUTH).json()
        if counted["available"] and counted["totals"]["impressions"] > counted_before:
            break
        assert time.monotonic() < deadline, "event counting did not resume"
        time.sleep(0.2)
    assert (impressions(served) - counted_before) % 2 == 0
