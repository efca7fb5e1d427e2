"""Shared fixtures: a Redis for the session, a namespace per test, private Redis servers, a clock.

Tests that need Redis use `REDIS_URL` when it is set; otherwise the session starts its own
`redis-server` on a free loopback port. Without either they fail (never skip) and say how to
get Redis. Collection refuses a test that asks for a Redis fixture without the `redis` marker,
so that `-m "not redis"` selects exactly the tests that run without one.

Every random choice of the tests is seeded from `RECOMMENDER_TEST_SEED` (printed in the header;
a fresh one when unset): rerun with the printed seed to repeat a run. ONNX exports of the model
are shared by the whole run (`RECOMMENDER_ENCODER_CACHE_DIR`).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
import redis

from bench.throwaway_database import DatabaseUnavailableError, throwaway_database
from tests.support.managed_service import ManagedService
from tests.support.postgres_server import ADMIN_URL as POSTGRES_ADMIN_URL
from tests.support.postgres_server import INSTALL_HINT as POSTGRES_HINT
from tests.support.postgres_server import PostgresProcess
from tests.support.redis_cluster import RedisClusterProcesses
from tests.support.redis_server import INSTALL_HINT, RedisProcess, RedisUnavailableError
from tests.support.tls_files import TlsFiles, make_tls_files

Server = TypeVar("Server", bound=ManagedService)

#: The fixtures that start or reach a Redis server.
REDIS_FIXTURES = frozenset(
    {"redis_url", "redis_namespace", "redis_process", "tls_redis", "redis_cluster"}
)
#: The test modules that take about a minute or more, longest first (junit or `--durations` times).
#: xdist hands out whole files in collection order (`--dist=loadfile --no-loadscope-reorder`):
#: started first, the long ones overlap and the short ones fill in the end, so that the two
#: workers finish together instead of one waiting on a long module dealt last.
STARTED_FIRST = (
    "tests/e2e/test_fault_points.py",
    "tests/e2e/test_cli.py",
    "tests/bench/test_backend_real_model.py",
    "tests/e2e/test_shared_database.py",
    "tests/e2e/test_cli_web_sources.py",
    "tests/recommender/test_onnx_encoder.py",
    "tests/e2e/test_reindex_interrupted.py",
    "tests/bench/test_reindex_bench.py",
    "tests/index/test_ray_blocks.py",
    "tests/e2e/test_real_model_api.py",
    "tests/bench/test_learning_bench.py",
    "tests/browser/test_widget_layouts.py",
    "tests/index/test_ray_encoding.py",
    "tests/e2e/test_workers.py",
    "tests/api/test_feedback_tokens.py",
    "tests/api/test_cache_bounds.py",
    "tests/e2e/test_swap_and_restart.py",
    "tests/api/test_schemathesis.py",
)
_STARTED_RANK = {name: rank for rank, name in enumerate(STARTED_FIRST)}
#: The seed of this run's random choices.
SEED = int(os.environ.get("RECOMMENDER_TEST_SEED") or random.SystemRandom().randrange(2**32))
# Test workers (pytest-xdist) start after this import and inherit it: one seed for the whole run.
os.environ["RECOMMENDER_TEST_SEED"] = str(SEED)
#: One ONNX export cache for the whole run (each data dir would otherwise export the model again,
#: ~15 s each); made by the first process (the controller under xdist), removed by it at the end.
_OWN_ENCODER_CACHE = "RECOMMENDER_ENCODER_CACHE_DIR" not in os.environ
if _OWN_ENCODER_CACHE:
    os.environ["RECOMMENDER_ENCODER_CACHE_DIR"] = tempfile.mkdtemp(prefix="recommender-encoders-")


def pytest_report_header() -> str:
    return f"RECOMMENDER_TEST_SEED={SEED}"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_ENCODER_CACHE:
        shutil.rmtree(os.environ.pop("RECOMMENDER_ENCODER_CACHE_DIR"), ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis (and Schemathesis over it) draws from the same seed unless told another.
    if getattr(config.option, "hypothesis_seed", "absent") is None:
        config.option.hypothesis_seed = SEED
    # The xdist workers share the machine's cores: each embeds on its share of them. Left at every
    # core, torch's and ONNX Runtime's threads spin against the other worker's: the real-model
    # backend test took 72 CPU s instead of 45 beside a busy core (the same vectors, bit for bit).
    # The serial phase keeps the default.
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "RECOMMENDER_THREADS" not in os.environ:
        share = (os.cpu_count() or 1) // int(workerinput["workercount"])
        os.environ["RECOMMENDER_THREADS"] = str(max(1, share))


def _uses_redis(item: pytest.Item) -> bool:
    """Whether `item` asks for a Redis fixture, or is a case parametrized with a Redis backend
    (which reaches its fixtures through `request.getfixturevalue`)."""
    if REDIS_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and any(
        isinstance(value, str) and value.startswith("redis") for value in callspec.params.values()
    )


def _start_rank(item: pytest.Item) -> int:
    """An item's module's place in `STARTED_FIRST`; every other module comes after them."""
    return _STARTED_RANK.get(item.nodeid.split("::")[0], len(STARTED_FIRST))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [name for name in STARTED_FIRST if not (config.rootpath / name).is_file()]
    if missing:
        raise pytest.UsageError(f"STARTED_FIRST names no such test module: {', '.join(missing)}")
    items.sort(key=_start_rank)  # stable: each module's items stay together, in their order
    unmarked = [
        item.nodeid
        for item in items
        if _uses_redis(item) and item.get_closest_marker("redis") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests use Redis but lack the `redis` marker:\n  " + "\n  ".join(unmarked)
        )


@pytest.fixture
def rng() -> random.Random:
    """The random choices of one test, from the run's seed and the test's own name."""
    return random.Random(f"{SEED}:{os.environ.get('PYTEST_CURRENT_TEST', '')}")


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
    failure: DatabaseUnavailableError | None = None
    try:
        with throwaway_database(POSTGRES_ADMIN_URL, prefix="test") as url:
            yield url
            return
    except DatabaseUnavailableError as exc:
        failure = exc
    pytest.fail(f"{failure}\n{POSTGRES_HINT}", pytrace=False)


@pytest.fixture
def postgres_process(request: pytest.FixtureRequest) -> PostgresProcess:
    """A running `postgres` of this test's own, which it may kill, pause or restart."""
    server = PostgresProcess()
    request.addfinalizer(server.close)
    server.start()
    return server
