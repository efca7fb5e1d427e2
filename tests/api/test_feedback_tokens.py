"""Unforgeable, deduplicated feedback: every list carries a signed token, and `POST /v1/events`
counts an event only when its token vouches for that target at that slot of that source's list,
once per impression id; everything else changes no counter and is counted by reason."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.serving.feedback_tokens import HOUR, KEY_FILE, shared_key_warning
from index.versions.reindex_pipeline import reindex
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.settings import Settings
from tests.support.helpers import (
    ADMIN_TOKEN,
    BEACON,
    box_events,
    build_fake_index,
    impression_id,
    post_events,
    synthetic_records,
    write_jsonl,
)
from tests.support.processes import ServeProcess

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
Events = list[dict[str, Any]]


def stats(client: TestClient) -> dict[str, Any]:
    response = client.get("/v1/stats/ctr", headers=AUTH)
    assert response.status_code == 200
    report: dict[str, Any] = response.json()
    return report


def counted(client: TestClient) -> tuple[int, int]:
    totals = stats(client)["totals"]
    return totals["impressions"], totals["clicks"]


def token_of(client: TestClient, source: str, limit: int = 3) -> str:
    token: str = client.get(f"/v1/articles/{source}/related", params={"limit": limit}).json()[
        "feedback"
    ]["token"]
    return token


def without(field: str) -> Callable[[TestClient, Events], Events]:
    return lambda _, box: [{k: v for k, v in e.items() if k != field} for e in box]


def another_source(client: TestClient, box: Events) -> Events:
    """volcano-0's events carrying the token of bitcoin-0's list."""
    return [{**e, "token": token_of(client, "bitcoin-0")} for e in box]


def another_position(_: TestClient, box: Events) -> Events:
    """The targets shown, each claimed at the next slot."""
    return [{**e, "slot": e["slot"] % len(box) + 1} for e in box]


def another_list(_: TestClient, box: Events) -> Events:
    """An article the list did not show, in its slots."""
    return [{**e, "target": "football-0"} for e in box]


def tampered_tags(_: TestClient, box: Events) -> Events:
    """One bit of every slot's signature flipped."""
    header, _, encoded = box[0]["token"].rpartition(".")
    tags = bytes(b ^ 1 for b in base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    token = f"{header}.{base64.urlsafe_b64encode(tags).decode().rstrip('=')}"
    return [{**e, "token": token} for e in box]


def extended_expiry(_: TestClient, box: Events) -> Events:
    version, arm, expiry, tags = box[0]["token"].split(".")
    return [{**e, "token": f"{version}.{arm}.{int(expiry) + 1000}.{tags}"} for e in box]


def another_arm(_: TestClient, box: Events) -> Events:
    version, _arm, expiry, tags = box[0]["token"].split(".")
    return [{**e, "token": f"{version}.learned.{expiry}.{tags}"} for e in box]


def garbage(_: TestClient, box: Events) -> Events:
    return [{**e, "token": "not-a-token"} for e in box]


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (without("token"), "missing_token"),
        (without("impression"), "missing_impression"),
        (another_source, "invalid_token"),
        (another_position, "invalid_token"),
        (another_list, "invalid_token"),
        (tampered_tags, "invalid_token"),
        (extended_expiry, "invalid_token"),
        (another_arm, "invalid_token"),
        (garbage, "invalid_token"),
    ],
)
@pytest.mark.parametrize("kind", ["impression", "click"])
def test_forged_events_change_no_counter_and_are_counted_by_reason(
    client: TestClient,
    forge: Callable[[TestClient, Events], Events],
    reason: str,
    kind: str,
) -> None:
    forged = forge(client, box_events(client, "volcano-0", kind, limit=3))
    for _ in range(2):
        assert post_events(client, forged) == {"accepted": 0, "ignored": 0, "refused": {reason: 3}}
    report = stats(client)
    assert report["by_slot"] == [] and report["by_target"] == []
    assert report["refused"] == {
        **dict.fromkeys(report["refused"], 0),
        reason: 6,
    }
    # The genuine events of the same box still count.
    assert post_events(client, box_events(client, "volcano-0", kind, limit=3))["accepted"] == 3


def test_a_replayed_impression_counts_once(client: TestClient) -> None:
    box = box_events(client, "volcano-0", limit=3)
    assert post_events(client, box)["accepted"] == 3
    assert post_events(client, box) == {"accepted": 0, "ignored": 0, "refused": {"duplicate": 3}}
    assert post_events(client, [box[0], box[0]]) == {
        "accepted": 0,
        "ignored": 0,
        "refused": {"duplicate": 2},
    }
    assert counted(client) == (3, 0)
    assert (
        post_events(client, box_events(client, "volcano-0", limit=3))["accepted"] == 3
    )  # a new box


def test_two_clicks_on_one_item_of_an_impression_count_once(client: TestClient) -> None:
    box = box_events(client, "volcano-0", limit=3)
    impression = box[0]["impression"]
    first = box_events(client, "volcano-0", "click", [2], limit=3, impression=impression)
    other = box_events(client, "volcano-0", "click", [3], limit=3, impression=impression)
    assert post_events(client, [*box, *first])["accepted"] == 4
    assert post_events(client, first)["refused"] == {"duplicate": 1}
    assert post_events(client, other)["accepted"] == 1  # another item of the same box
    assert counted(client) == (3, 2)
    assert stats(client)["refused"]["duplicate"] == 1


class Clock:
    """The wall clock, moved on at will."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed_client(settings: Settings, clock: Clock) -> Any:
    with TestClient(create_app(settings, clock=clock)) as test_client:
        yield test_client


def test_a_token_expires_after_its_hours(
    timed_client: TestClient, clock: Clock, settings: Settings
) -> None:
    box = box_events(timed_client, "volcano-0", limit=2)
    clock.offset = settings.feedback.token_hours * HOUR  # still valid: issued + the hour it ran
    assert post_events(timed_client, box)["accepted"] == 2
    late = box_events(timed_client, "volcano-0", "click", [1], limit=2)
    # A token issued earlier, used after its expiry hour.
    stale = [{**e, "token": box[0]["token"]} for e in late]
    clock.offset = (settings.feedback.token_hours + 1) * HOUR
    assert post_events(timed_client, stale)["refused"] == {"expired_token": 1}
    assert counted(timed_client) == (2, 0)
    assert stats(timed_client)["refused"]["expired_token"] == 1


def test_a_list_changes_token_and_etag_with_the_hour(
    timed_client: TestClient, clock: Clock
) -> None:
    path = "/v1/articles/volcano-0/related"
    first = timed_client.get(path)
    again = timed_client.get(path)
    assert again.content == first.content  # one hour, one token: the same bytes for everyone
    clock.offset = HOUR
    later = timed_client.get(path)
    assert later.json()["items"] == first.json()["items"]
    assert later.json()["feedback"]["token"] != first.json()["feedback"]["token"]
    # A cache revalidating its old copy gets the new one: its token would expire otherwise.
    assert later.headers["etag"] != first.headers["etag"]
    revalidated = timed_client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert revalidated.status_code == 200


def fragment_token(client: TestClient, source: str, limit: int) -> str:
    html = client.get(f"/v1/articles/{source}/related.html", params={"limit": limit}).text
    found = re.search(r'data-feedback-token="([^"]+)" data-feedback-arm="default"', html)
    assert found, html
    return found[1]


def test_the_json_and_the_fragment_carry_the_same_token(client: TestClient) -> None:
    for limit in (1, 3, 5):
        body = client.get("/v1/articles/volcano-0/related", params={"limit": limit}).json()
        assert body["feedback"]["arm"] == "default"
        assert fragment_token(client, "volcano-0", limit) == body["feedback"]["token"]
    assert token_of(client, "volcano-0", 3) != token_of(client, "volcano-0", 5)


def test_a_fragment_event_counts(client: TestClient) -> None:
    """What widget.js sends for a box: the fragment's token, its slots and slugs."""
    html = client.get("/v1/articles/bitcoin-0/related.html", params={"limit": 2}).text
    slots = re.findall(r'data-slot="(\d+)" data-slug="([a-z0-9-]+)"', html)
    token, impression = fragment_token(client, "bitcoin-0", 2), impression_id()
    events = [
        {"type": "impression", "source": "bitcoin-0", "target": slug, "slot": int(slot),
         "token": token, "impression": impression}
        for slot, slug in slots
    ]  # fmt: skip
    assert post_events(client, events) == {"accepted": 2, "ignored": 0, "refused": {}}


def test_the_token_is_deterministic_and_changes_with_the_version(tmp_path: Path) -> None:
    """Two apps (two workers) over one data directory issue the same token for the same list
    without sharing a cache; a new version gives another token, and the old one still counts
    while valid (a reader's page was served before the swap)."""
    settings, _ = build_fake_index(tmp_path / "data", admin_token=ADMIN_TOKEN)
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        before = token_of(one, "volcano-0")
        assert token_of(two, "volcano-0") == before
        old_box = box_events(one, "volcano-0", limit=3)
    assert (settings.data_dir / KEY_FILE).stat().st_mode & 0o077 == 0
    records = [*synthetic_records(), {"slug": "new-story", "title": "A new story"}]
    reindex(settings.index, [write_jsonl(tmp_path / "again.jsonl", records)], HashingEncoder())
    with TestClient(create_app(settings)) as client:
        after = token_of(client, "volcano-0")
        assert after != before and after.split(".")[0] != before.split(".")[0]
        assert post_events(client, old_box)["accepted"] == 3


def test_the_secret_setting_signs_instead_of_the_key_file(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data", admin_token=ADMIN_TOKEN)
    keyed = settings.replaced(feedback_secret="one secret " * 3)
    other = settings.replaced(feedback_secret="another secret " * 3)
    with TestClient(create_app(keyed)) as client:
        box = box_events(client, "volcano-0", limit=2)
    with TestClient(create_app(settings)) as client:
        assert token_of(client, "volcano-0", 2) != box[0]["token"]
        assert post_events(client, box)["refused"] == {"invalid_token": 2}
    with TestClient(create_app(other)) as client:
        assert post_events(client, box)["refused"] == {"invalid_token": 2}
    with TestClient(create_app(keyed)) as client:
        assert post_events(client, box)["accepted"] == 2


@pytest.mark.redis
def test_two_workers_receiving_one_beacon_at_once_count_it_once(
    tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    """`recommender serve --workers 2` on one Redis: each beacon is posted four times at once
    over fresh connections (the kernel spreads them over both workers, which also created
    their shared key file together); every event counts exactly once."""
    settings, _ = build_fake_index(tmp_path / "data", redis_url=None)
    env = {
        "RECOMMENDER_MODEL": "fake-hashing",
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN,
        "RECOMMENDER_EVENT_RATE_PER_SECOND": "0",
        "REDIS_URL": redis_url,
        "RECOMMENDER_CACHE_NAMESPACE": redis_namespace,
        "RECOMMENDER_EVENTS_NAMESPACE": redis_namespace + "events:",
    }
    with (
        ServeProcess(env, tmp_path / "serve.log", args=["--workers", "2"]) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        bodies = []
        for _ in range(20):
            box = box_events(client, "volcano-0", limit=3)
            impression = box[0]["impression"]
            click = box_events(client, "volcano-0", "click", [1], limit=3, impression=impression)
            bodies.append(json.dumps({"events": [*box, *click]}))

        def send(body: str) -> dict[str, Any]:
            with httpx.Client(timeout=10, headers={"Connection": "close"}) as fresh:
                response = fresh.post(f"{server.url}/v1/events", content=body, headers=BEACON)
            assert response.status_code == 202, response.text
            receipt: dict[str, Any] = response.json()
            return receipt

        with ThreadPoolExecutor(8) as pool:
            receipts = list(pool.map(send, [body for body in bodies for _ in range(4)]))
        assert sum(r["accepted"] for r in receipts) == 20 * 4
        assert sum(r["refused"].get("duplicate", 0) for r in receipts) == 20 * 4 * 3
        report = client.get("/v1/stats/ctr", headers=AUTH).json()
    assert (report["totals"]["impressions"], report["totals"]["clicks"]) == (20 * 3, 20)
    assert report["refused"]["duplicate"] == 20 * 4 * 3


def test_readiness_warns_when_several_hosts_would_sign_with_their_own_keys(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)
    assert shared_key_warning(settings.feedback, settings.index) is None
    shared = settings.replaced(store_url="file:///srv/versions")
    warning = shared_key_warning(shared.feedback, shared.index)
    assert warning and "RECOMMENDER_FEEDBACK_SECRET" in warning
    database = settings.replaced(database_url="postgresql://db/related")
    assert shared_key_warning(database.feedback, database.index) == warning
    keyed = shared.replaced(feedback_secret="one secret for every host")
    assert shared_key_warning(keyed.feedback, keyed.index) is None
