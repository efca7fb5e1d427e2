"""Shared fixtures: a Redis for the session, a namespace per test, private Redis servers, a clock.

Tests that need Redis use `REDIS_URL` when it is set; otherwise the session starts its own
`redis-server` on a free loopback port. Without either they fail (never skip) and say how to
get Redis.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
import redis

from tests.support.managed_service import ManagedService
from tests.support.postgres_server import INSTALL_HINT as POSTGRES_HINT
from tests.support.postgres_server import (
    PostgresProcess,
    PostgresUnavailableError,
    throwaway_database,
)
from tests.support.redis_cluster import RedisClusterProcesses
from tests.support.redis_server import INSTALL_HINT, RedisProcess, RedisUnavailableError
from tests.support.tls_files import TlsFiles, make_tls_files

Server = TypeVar("Server", bound=ManagedService)


@dataclass
class FakeClock:
    """A monotonic clock that moves only when told to."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


def _start_private_redis(request: pytest.FixtureRequest, make: Callable[[], Server]) -> Server:
    failure: RedisUnavailableError | None = None
    try:
        server = make()
        # Registered before start(): a server is stopped even if the tests crash mid-way.
        request.addfinalizer(server.close)
        server.start()
    except RedisUnavailableError as exc:
        failure = exc
    if failure is not None:  # failing outside `except` keeps the report to one message
        pytest.fail(f"{failure}\n{INSTALL_HINT}", pytrace=False)
    return server


def _ping(url: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
        return
    except redis.RedisError as exc:
        failure = exc
    finally:
        client.close()
    pytest.fail(f"REDIS_URL={url} does not answer PING ({failure}). {INSTALL_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """`REDIS_URL` if set, else the URL of a redis-server started for this session."""
    url = os.environ.get("REDIS_URL")
    if url:
        _ping(url)
        return url
    return _start_private_redis(request, RedisProcess).url


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    namespace = f"test:{uuid.uuid4().hex}:"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=namespace + "*", count=500))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_process(request: pytest.FixtureRequest) -> RedisProcess:
    """A running redis-server of this test's own, which it may kill, pause or restart."""
    return _start_private_redis(request, RedisProcess)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA with a server and a client certificate (made with `openssl`)."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_redis(request: pytest.FixtureRequest, tls_files: TlsFiles) -> RedisProcess:
    """The session's redis-server that speaks TLS only and wants client certificates."""
    return _start_private_redis(request, lambda: RedisProcess(tls=tls_files))


@pytest.fixture(scope="session")
def redis_cluster(request: pytest.FixtureRequest) -> RedisClusterProcesses:
    """The session's Redis Cluster: three primaries on loopback ports."""
    return _start_private_redis(request, RedisClusterProcesses)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway database on the machine's PostgreSQL (dropped afterwards); fails, never
    skips, when there is none."""
    failure: PostgresUnavailableError | None = None
    try:
        with throwaway_database() as url:
            yield url
            return
    except PostgresUnavailableError as exc:
        failure = exc
    pytest.fail(f"{failure}\n{POSTGRES_HINT}", pytrace=False)


@pytest.fixture
def postgres_process(request: pytest.FixtureRequest) -> PostgresProcess:
    """A running `postgres` of this test's own, which it may kill, pause or restart."""
    server = PostgresProcess()
    request.addfinalizer(server.close)
    server.start()
    return server
