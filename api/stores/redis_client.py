"""One way to reach Redis for every part of the service: plain, TLS (`rediss://`) or Cluster.

`make_redis(settings)` builds the asyncio client the settings describe; `RedisEndpoint` and
`connect` do the same for a caller with its own time bound. A client makes one attempt per
command: its callers bound their calls and degrade by themselves, and hidden retries would
multiply their latency bound.

In a cluster every key lives in one of 16384 slots. Keep multi-key commands to keys of one
slot (a shared `{hash tag}`) or send them key by key; DEL and UNLINK of many keys are split
by slot by redis-py. A SCAN sees one node: `scan_nodes` and `scan_page` walk all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, cast
from urllib.parse import urlsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from recommender.settings import RedisSettings

__all__ = [
    "RedisClient",
    "RedisEndpoint",
    "ScanNode",
    "connect",
    "make_redis",
    "reset_connections",
    "scan_nodes",
    "scan_page",
]

RedisClient: TypeAlias = Redis | RedisCluster
#: Where one SCAN runs: a cluster's primary node, or None for a single server.
ScanNode: TypeAlias = ClusterNode | None
TlsVerify = Literal["required", "optional", "none"]


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """Where Redis is and how to talk to it.

    `url` is `redis://`, `rediss://` (TLS) or `unix://`; with `cluster`, any one node of a
    Redis Cluster, from which the others are discovered. The TLS files and `tls_verify` apply
    to `rediss://` only.
    """

    url: str
    cluster: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_verify: TlsVerify = "required"

    def __post_init__(self) -> None:
        tls_options = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if not self.uses_tls and (any(tls_options) or self.tls_verify != "required"):
            raise ValueError(
                "RECOMMENDER_REDIS_TLS_* settings need a rediss:// URL, "
                f"not {urlsplit(self.url).scheme}://"
            )

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme == "rediss"

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> RedisEndpoint:
        """The endpoint of `settings.url` (REDIS_URL); ValueError when it is unset."""
        if settings.url is None:
            raise ValueError("REDIS_URL is not set")
        return cls(
            url=settings.url,
            cluster=settings.cluster,
            tls_ca_file=settings.tls_ca_file,
            tls_cert_file=settings.tls_cert_file,
            tls_key_file=settings.tls_key_file,
            tls_verify=settings.tls_verify,
        )

    def tls_options(self) -> dict[str, Any]:
        """redis-py's keyword arguments for TLS (none for a plain connection)."""
        if not self.uses_tls:
            return {}

        def text(path: Path | None) -> str | None:
            return None if path is None else str(path)

        return {
            "ssl_ca_certs": text(self.tls_ca_file),
            "ssl_certfile": text(self.tls_cert_file),
            "ssl_keyfile": text(self.tls_key_file),
            "ssl_cert_reqs": self.tls_verify,
        }


def connect(endpoint: str | RedisEndpoint, timeout_ms: int) -> RedisClient:
    """An asyncio client for `endpoint` (a plain URL or an endpoint with TLS and cluster
    settings); each socket operation is bounded by `timeout_ms`.

    Nothing is sent before the first command (a cluster discovers its nodes then).
    """
    if isinstance(endpoint, str):
        endpoint = RedisEndpoint(endpoint)
    timeout = timeout_ms / 1000
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        **endpoint.tls_options(),
    }
    if endpoint.cluster:
        return RedisCluster.from_url(endpoint.url, **options)
    return Redis.from_url(endpoint.url, **options)


def make_redis(settings: RedisSettings) -> RedisClient:
    """The client for `settings` (REDIS_URL, cluster and TLS settings, the per-call timeout)."""
    return connect(RedisEndpoint.from_settings(settings), settings.timeout_ms)


async def reset_connections(client: RedisClient) -> None:
    """Drop every open connection, so the next command starts afresh.

    After an outage, open connections may be dead, and a cluster may have moved its slots:
    a cluster client also rediscovers its nodes on the next command.
    """
    if isinstance(client, RedisCluster):
        await client.aclose()
    else:
        await client.connection_pool.disconnect()


async def scan_nodes(client: RedisClient) -> list[ScanNode]:
    """Where a SCAN must run to see every key: each primary of a cluster, or the one server."""
    if isinstance(client, RedisCluster):
        await client.initialize()
        return list(client.get_primaries())
    return [None]


async def scan_page(
    client: RedisClient, node: ScanNode, cursor: int, *, match: str, count: int
) -> tuple[int, list[bytes]]:
    """One SCAN step on `node` (see `scan_nodes`): the next cursor (0 = done) and the keys."""
    # Keys are bytes: no client here is built with decode_responses.
    if node is None:
        next_cursor, names = await client.scan(cursor, match=match, count=count)
        return int(next_cursor), cast(list[bytes], names)
    # A cluster answers a SCAN sent to one node with {node name: cursor}.
    cursors, names = await client.scan(cursor, match=match, count=count, target_nodes=node)
    return int(cast(dict[str, int], cursors)[node.name]), cast(list[bytes], names)
