"""A Redis that answers, but slowly, while readers keep asking: every answer is still a 200 within
the bound, and caching resumes once the replies are fast again.

Redis itself stays healthy; the app reaches it through a loopback proxy (`DelayingProxy`) that
holds every chunk of the conversation back by several times the app's Redis timeout, as a
congested link or an overloaded Redis host would. The load, the checks and the recovery are
those of the outage tests (`run_outage`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from recommender.settings import Settings
from tests.api.test_redis_outage import NAMESPACE, run_outage
from tests.support.helpers import build_fake_index
from tests.support.redis_server import RedisProcess
from tests.support.servers import running_server
from tests.support.tcp_proxy import DelayingProxy

pytestmark = [pytest.mark.redis, pytest.mark.timing]

TIMEOUT_MS = 50
#: Each chunk, both ways, arrives this late while Redis is "slow": six times the timeout.
SLOW_SECONDS = 0.3


@pytest.fixture
def proxy(redis_process: RedisProcess) -> Iterator[DelayingProxy]:
    with DelayingProxy(redis_process.port) as running:
        yield running


@pytest.fixture
def server(tmp_path: Path, proxy: DelayingProxy) -> Iterator[str]:
    settings: Settings
    settings, _ = build_fake_index(
        tmp_path / "data",
        redis_url=proxy.url,
        redis_timeout_ms=TIMEOUT_MS,
        cache_namespace=NAMESPACE,
        memory_cache_entries=1,  # nearly every request goes to Redis (see test_redis_outage)
        local_cache_ttl_seconds=1,
    )
    with running_server(create_app(settings)) as url:
        yield url


def test_slow_redis_replies_are_bypassed_and_redis_comes_back(
    server: str,
    proxy: DelayingProxy,
    redis_process: RedisProcess,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def slow_down() -> None:
        proxy.delay = SLOW_SECONDS

    def speed_up() -> None:
        proxy.delay = 0.0

    run_outage(server, redis_process, caplog, break_redis=slow_down, heal_redis=speed_up)
