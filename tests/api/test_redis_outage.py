"""Redis dies, freezes or pauses while readers keep asking: every answer is still a prompt 200.

The real app is served by a real uvicorn server (in a thread, on a loopback socket of its
own) and driven by a few client threads that send requests continuously, while the test
breaks the test's own redis-server for real (SIGKILL, SIGSTOP, `CLIENT PAUSE`) and then
heals it. Nothing helps the cache recover: the app must notice by itself.

No assertion reads a wall clock of the test: on a busy 2-core machine a client thread may stall
for any time. What must hold is what the app itself measured: every Redis call was cut at its
timeout (counted as cache errors) and, by the app's own latency histogram, no request came near
the seconds an unbounded call to a frozen Redis would take. Absolute latency lives in
`make soak` and `make bench`.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from api.app import create_app
from recommender.settings import Settings
from tests.support.helpers import build_fake_index, synthetic_records, wait_for
from tests.support.redis_server import RedisProcess
from tests.support.servers import running_server

pytestmark = [pytest.mark.redis, pytest.mark.timing]

#: A histogram bucket of `recommender_request_seconds` that every request must fall in, as the
#: app measured it. Redis calls are bounded by 50 ms; an unbounded call to a frozen Redis never
#: returns, so this only catches "unbounded", never a busy machine.
BOUND = "2.5"
#: Requests the readers make before, during and after each outage (a count, not a duration:
#: a busy machine makes them more slowly, never fewer). A killed or frozen Redis stays broken
#: until they are made; a CLIENT PAUSE, which no client can lift, lasts PAUSE_MS.
REQUESTS = 20
PAUSE_MS = 5000
#: Time for the app to notice that Redis is back. Its backoff starts at 0.5 s and doubles up to
#: 30 s (`RedisGuard`); on a busy machine a probe can fail after the heal too, so the bound is the
#: longest backoff plus one probe: it catches "never recovers", not a slow machine.
RECOVERY = 35.0
CLIENTS = 4
NAMESPACE = "outage:"

PATHS = [
    f"/v1/articles/{record['slug']}/related?limit={limit}"
    for record in synthetic_records()
    for limit in range(1, 11)
]


@pytest.fixture
def settings(tmp_path: Path, redis_process: RedisProcess) -> Settings:
    built, _ = build_fake_index(
        tmp_path / "data",
        redis_url=redis_process.url,
        cache_namespace=NAMESPACE,
        # A one-entry, one-second memory tier: nearly every request goes to Redis, so the
        # outage is felt by the requests rather than hidden by process memory.
        memory_cache_entries=1,
        local_cache_ttl_seconds=1,
    )
    return built


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a free loopback port; yields its base URL."""
    with running_server(create_app(settings)) as url:
        yield url


@dataclass(frozen=True)
class Answer:
    path: str
    started: float
    status: int
    body: bytes


@dataclass
class Load:
    """Client threads that each send requests one after another until stopped."""

    base_url: str
    clients: int = CLIENTS
    #: A safety stop for a test that dies without calling `stop`.
    max_seconds: float = 180.0
    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for n in range(self.clients):
            thread = threading.Thread(target=self._run, args=(n,), name=f"load-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        assert not any(t.is_alive() for t in self._threads), "a client thread hung"

    def _run(self, n: int) -> None:
        give_up_at = time.monotonic() + self.max_seconds
        i = n * len(PATHS) // self.clients
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while not self._stop.is_set() and time.monotonic() < give_up_at:
                path = PATHS[i % len(PATHS)]
                i += 1
                started = time.monotonic()
                try:
                    response = client.get(path)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(f"{path}: {type(exc).__name__}: {exc}")
                    continue
                answer = Answer(path, started, response.status_code, response.content)
                with self._lock:
                    self.answers.append(answer)

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if start <= a.started < end]


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def related_requests(client: httpx.Client, le: str) -> tuple[float, float]:
    """(requests of the related route, those the app timed within `le` seconds)."""
    total = within = 0.0
    for line in client.get("/metrics").text.splitlines():
        if not line.startswith("recommender_request_seconds_") or "/related" not in line:
            continue
        if line.startswith("recommender_request_seconds_count"):
            total += float(line.split()[-1])
        elif line.startswith("recommender_request_seconds_bucket") and f'le="{le}"' in line:
            within += float(line.split()[-1])
    return total, within


def cache_state(client: httpx.Client) -> str:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    state: str = response.json()["cache"]
    return state


def namespace_keys(url: str) -> int:
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return sum(1 for _ in client.scan_iter(match=NAMESPACE + "*", count=500))
    finally:
        client.close()


def forget_namespace(url: str) -> None:
    """Delete the app's keys, so that new ones can only come from writes after the outage."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(match=NAMESPACE + "*", count=500))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


def run_outage(
    base_url: str,
    redis_process: RedisProcess,
    caplog: pytest.LogCaptureFixture,
    *,
    break_redis: Callable[[], None],
    heal_redis: Callable[[], None],
) -> None:
    """Requests before, during and after an outage: all 200, identical, bounded; caching resumes."""
    caplog.set_level(logging.INFO, logger="api.stores.redis_result_cache")
    with httpx.Client(base_url=base_url, timeout=5.0) as probe:
        expected = {}
        for path in PATHS:
            response = probe.get(path)
            assert response.status_code == 200, response.text
            expected[path] = response.content
        # A loaded box can push one early reply past the 50 ms timeout; the guard then bypasses
        # Redis briefly, which is its job, and recovers on the next cached request after its
        # backoff (/readyz itself touches no Redis). The outage starts only from a healthy cache.
        wait_for(
            lambda: probe.get(PATHS[0]).status_code == 200 and cache_state(probe) == "ok",
            "/readyz saying ok before the outage",
        )
        for path in PATHS:
            assert probe.get(path).content == expected[path]
        assert namespace_keys(redis_process.url) > 0, "the app did not write to Redis at all"
        errors_before = metric(probe, "recommender_cache_errors_total")

        load = Load(base_url)
        load.start()
        try:
            wait_for(lambda: len(load.answers) >= REQUESTS, "requests before the outage")
            outage_start = time.monotonic()
            break_redis()
            # Conditions, not sleeps: the app noticed, and readers kept asking meanwhile.
            wait_for(lambda: cache_state(probe) == "degraded", "/readyz saying degraded")
            wait_for(
                lambda: len(load.between(outage_start, time.monotonic())) >= REQUESTS,
                "requests during the outage",
            )
            assert metric(probe, "recommender_cache_errors_total") > errors_before
            outage_end = time.monotonic()
            heal_redis()
            wait_for(lambda: cache_state(probe) == "ok", "the cache recovering", RECOVERY)
            # A frozen Redis runs the writes it had buffered when it thaws: start from nothing.
            forget_namespace(redis_process.url)
            wait_for(
                lambda: namespace_keys(redis_process.url) > 0,
                "entries written to Redis after it came back",
                RECOVERY,
            )
            healed = len(load.answers)
            wait_for(lambda: len(load.answers) >= healed + REQUESTS, "requests after the outage")
        finally:
            load.stop()
        # Pooled connections from before a restart may each fail once more (and back off)
        # before the pool is all new: what matters is that the cache settles on ok by itself.
        touches = itertools.cycle(PATHS)
        wait_for(
            lambda: probe.get(next(touches)).status_code == 200 and cache_state(probe) == "ok",
            "the cache settling on ok",
            RECOVERY,
        )
        assert metric(probe, "recommender_cache_degraded") == 0.0
        requests, bounded = related_requests(probe, BOUND)

    assert not load.failures, f"{len(load.failures)} requests failed: {load.failures[:5]}"
    assert len(load.between(outage_start, outage_end)) >= REQUESTS
    bad = [(a.path, a.status) for a in load.answers if a.status != 200]
    assert not bad, f"{len(bad)} of {len(load.answers)} answers were not 200: {bad[:5]}"
    changed = [a.path for a in load.answers if a.body != expected[a.path]]
    assert not changed, f"{len(changed)} answers differ from before the outage: {changed[:5]}"
    assert requests >= len(load.answers)
    assert bounded == requests, f"{requests - bounded} requests took the app over {BOUND} s"
    # One warning for the outage however many requests hit it, then one line for the recovery.
    cache_logs = [r.levelno for r in caplog.records if r.name == "api.stores.redis_result_cache"]
    assert cache_logs == [logging.WARNING, logging.INFO], caplog.text


def test_killed_redis_is_bypassed_and_used_again_after_a_restart(
    server: str, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    run_outage(
        server,
        redis_process,
        caplog,
        break_redis=redis_process.kill,  # SIGKILL: connections reset, then refused
        heal_redis=redis_process.start,  # same port, empty
    )


def test_a_frozen_redis_is_bypassed_and_used_again_when_it_thaws(
    server: str, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    run_outage(
        server,
        redis_process,
        caplog,
        break_redis=redis_process.pause,  # SIGSTOP: connections accepted, nothing answers
        heal_redis=redis_process.resume,
    )


def test_a_client_pause_is_bypassed_and_redis_used_again_after_it(
    server: str, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    def pause_clients() -> None:
        admin = redis.Redis.from_url(redis_process.url, socket_timeout=2)
        try:
            admin.client_pause(PAUSE_MS, all=True)  # CLIENT PAUSE <ms> ALL
        finally:
            admin.close()

    run_outage(
        server,
        redis_process,
        caplog,
        break_redis=pause_clients,
        heal_redis=lambda: None,  # the pause ends by itself
    )
