"""Click counters outlive a Redis restart in the shipped setup (docker-compose.yml's Redis)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.helpers import ADMIN_TOKEN, REPO, box_events, build_fake_index, wait_for
from tests.support.redis_server import RedisProcess

pytestmark = pytest.mark.redis


def compose_redis_options() -> list[str]:
    """The options docker-compose.yml starts redis-server with (its command, less the program)."""
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    program, *options = (str(word) for word in services["services"]["redis"]["command"])
    assert program == "redis-server"
    return options


@pytest.fixture
def shipped_redis() -> Iterator[RedisProcess]:
    """A private redis-server with the compose file's options; its later options win over the
    helper's defaults (no persistence), as in redis.conf."""
    server = RedisProcess(extra_args=compose_redis_options())
    try:
        server.start()
        yield server
    finally:
        server.close()


def ctr(client: TestClient) -> dict[str, Any]:
    response = client.get(
        "/v1/stats/ctr",
        params={"slug": "volcano-0"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 200
    report: dict[str, Any] = response.json()
    return report


def test_a_click_is_still_reported_after_redis_restarts(
    tmp_path: Path, shipped_redis: RedisProcess
) -> None:
    settings, _ = build_fake_index(
        tmp_path / "data", admin_token=ADMIN_TOKEN, redis_url=shipped_redis.url
    )
    with TestClient(create_app(settings)) as client:
        click = box_events(client, "volcano-0", "click", [1])
        assert click[0]["target"] == "volcano-1"
        posted = client.post(
            "/v1/events",
            content=json.dumps({"events": click}),
            headers={"Content-Type": "application/json"},
        )
        assert posted.json() == {"accepted": 1, "ignored": 0, "refused": {}}
        assert ctr(client)["totals"]["clicks"] == 1
    shipped_redis.stop()  # a clean shutdown, as `docker compose restart redis` does
    shipped_redis.start()  # the same port and directory
    with TestClient(create_app(settings)) as client:
        wait_for(lambda: ctr(client)["available"], "the counters to be readable again")
        report = ctr(client)
    assert report["totals"]["clicks"] == 1
    assert report["by_target"][0]["target"] == "volcano-1"
