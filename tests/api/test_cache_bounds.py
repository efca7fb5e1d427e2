"""Nothing a reader sends grows the cache without bound, and the cache never costs counters.

Values that name articles must be slugs, other values are bounded, cache keys are a fixed-size
digest of the normalised query, and `/readyz` warns when Redis's memory policy would evict
(or refuse) the widget's counters once the cache fills Redis (real Redis, each policy).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.settings import Settings
from tests.support.helpers import box_events, build_fake_index
from tests.support.redis_server import RedisProcess

RELATED = "/v1/articles/volcano-0/related"
FRAGMENT = "/v1/articles/volcano-0/related.html"
#: Longest a result-cache key may be: prefix, version tag, slug (at most 200) and a digest.
MAX_KEY_BYTES = 400
TOKEN = "bounds-admin-token"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("bounds") / "data"
    settings, _ = build_fake_index(data, redis_url=None, admin_token=TOKEN)
    return settings


def with_redis(settings: Settings, url: str) -> Settings:
    # Generous Redis timeouts: these tests count what is stored, and on a busy machine a first
    # call past the 50 ms default (the event counters': 500 ms) makes the cache or the counters
    # bypass Redis for a moment (their job, tested in test_cache_faults.py and
    # test_events_frozen_redis.py), so that nothing would be stored or counted.
    return settings.replaced(
        **{"redis_url": url, "redis_timeout_ms": 2_000, "events_timeout_ms": 2_000}
    )


@pytest.fixture
def client(indexed: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(indexed)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "query",
    [
        "exclude=Volcano-1",  # a value that names an article must be a slug
        "exclude=" + "a" * 201,
        "exclude=volcano-1&exclude=not%20a%20slug",
        "exclude=" + "x" * 65_000,
        "section=" + "s" * 201,
    ],
)
def test_unbounded_or_non_slug_values_are_refused(client: TestClient, query: str) -> None:
    response = client.get(f"{RELATED}?{query}")
    assert response.status_code == 422, response.text[:200]
    assert response.json()["error"] == "invalid_request"


def test_bounded_values_are_answered(client: TestClient) -> None:
    response = client.get(f"{RELATED}?exclude=volcano-1&section=" + "s" * 200)
    assert response.status_code == 200
    assert client.get(f"{FRAGMENT}?heading=" + "h" * 101).status_code == 422


@pytest.mark.redis
def test_cache_keys_are_fixed_size_digests(indexed: Settings, redis_process: RedisProcess) -> None:
    """The largest valid requests store keys of a bounded size, distinct per query."""
    longest = ["-".join(["a" * 99, f"{n:0>100}"]) for n in range(200)]
    requests: list[tuple[str, list[tuple[str, str | int | float | bool | None]]]] = [
        (RELATED, [("exclude", slug) for slug in longest]),
        (RELATED, [("section", f"{n}" + "s" * 190) for n in range(50)]),
        (RELATED, [("section", "a,b")]),  # not the same query as a and b
        (RELATED, [("section", "a"), ("section", "b")]),
        (FRAGMENT, [("heading", "h" * 100)]),
        (RELATED, []),
    ]
    with TestClient(create_app(with_redis(indexed, redis_process.url))) as client:
        for path, params in requests:
            assert client.get(path, params=params).status_code == 200
    keys = redis.Redis.from_url(redis_process.url).keys("rec:related:*")
    assert len(keys) == len(requests)
    assert max(len(key) for key in keys) <= MAX_KEY_BYTES


def fill_cache(client: TestClient, megabytes: float) -> None:
    """Distinct valid queries, as one anonymous client can send, until `megabytes` were cached."""
    stored = 0
    n = 0
    while stored < megabytes * 1_000_000:
        response = client.get(RELATED, params={"limit": 50, "exclude": f"flood-{n}"})
        assert response.status_code == 200
        stored += len(response.content)
        n += 1


@pytest.mark.redis
@pytest.mark.parametrize(
    ("policy", "warns"),
    [
        ("volatile-lru", False),
        ("volatile-lfu", False),
        ("volatile-ttl", False),
        ("volatile-random", False),
        ("allkeys-lru", True),
        ("allkeys-lfu", True),
        ("allkeys-random", True),
        ("noeviction", True),
    ],
)
def test_readyz_warns_when_the_memory_policy_would_cost_counters(
    indexed: Settings, policy: str, warns: bool
) -> None:
    server = RedisProcess(extra_args=["--maxmemory", "3mb", "--maxmemory-policy", policy])
    server.start()
    try:
        with TestClient(create_app(with_redis(indexed, server.url))) as client:
            warnings = client.get("/readyz").json()["warnings"]
            assert bool(warnings) is warns, warnings
            if warns:
                assert policy in warnings[0] and "volatile-lru" in warnings[0]
                return
            # Under the documented policy a cache flood evicts cache entries, never counters.
            shown = box_events(client, "volcano-0", limit=1)
            impression = shown[0]["impression"]
            click = box_events(client, "volcano-0", "click", limit=1, impression=impression)
            posted = client.post("/v1/events", json={"events": [*shown, *click]})
            assert posted.json()["accepted"] == 2
            fill_cache(client, megabytes=6)
            assert redis.Redis.from_url(server.url).info("stats")["evicted_keys"] > 0
            report = client.get(
                "/v1/stats/ctr",
                params={"slug": "volcano-0"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            totals = report.json()["totals"]
            assert (totals["impressions"], totals["clicks"]) == (1, 1)
    finally:
        server.close()


def test_readyz_without_redis_warns_that_a_restart_loses_the_counters(
    client: TestClient,
) -> None:
    (warning,) = client.get("/readyz").json()["warnings"]
    assert "REDIS_URL is not set" in warning and "a restart loses them" in warning
