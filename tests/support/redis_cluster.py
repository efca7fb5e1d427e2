"""A private Redis Cluster for tests: three primaries on loopback ports, no replicas."""

from __future__ import annotations

import shutil
import subprocess
import time

import redis

from tests.support.managed_service import ManagedService
from tests.support.redis_server import RedisProcess, RedisUnavailableError, free_port

#: Times a new cluster draws its ports again when one was taken before its node bound it.
FIRST_START_ATTEMPTS = 3


class RedisClusterProcesses(ManagedService):
    """`size` cluster-enabled redis-servers that `start()` joins into one cluster.

    Each node keeps its cluster state (`nodes.conf`) in its own directory, so after `stop()`,
    `start()` brings the same cluster back on the same ports, as a restarted cluster would.
    """

    def __init__(self, size: int = 3) -> None:
        self.nodes = self._drawn(size)
        self._created = False

    @staticmethod
    def _drawn(size: int) -> list[RedisProcess]:
        """`size` nodes on distinct ports, each with a cluster bus port of its own (the default,
        port + 10000, may be taken or out of range)."""
        ports: list[int] = []
        while len(ports) < 2 * size:
            port = free_port()
            if port not in ports:
                ports.append(port)
        return [
            RedisProcess(port, extra_args=["--cluster-enabled", "yes", "--cluster-port",
                                           str(bus), "--cluster-node-timeout", "2000"])
            for port, bus in zip(ports[:size], ports[size:], strict=True)
        ]  # fmt: skip

    @property
    def url(self) -> str:
        """One node's URL: a cluster client discovers the others from it."""
        return self.nodes[0].url

    def start(self, timeout: float = 30.0) -> None:
        """Start every node, create the cluster the first time, and wait until it serves."""
        deadline = time.monotonic() + timeout
        for attempt in range(FIRST_START_ATTEMPTS):
            try:
                for node in self.nodes:
                    node.start()
                break
            except RedisUnavailableError as exc:
                # A port drawn free may be bound by another test's server before the node binds
                # it; a cluster not created yet can start over on other ports.
                taken = "Address already in use" in str(exc)
                if self._created or not taken or attempt == FIRST_START_ATTEMPTS - 1:
                    raise
                self.close()
                self.nodes = self._drawn(len(self.nodes))
        if not self._created:
            self._create(timeout)
            self._created = True
        while not all(self._state_ok(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise RedisUnavailableError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def stop(self) -> None:
        """Shut every node down; their cluster state stays for the next `start()`."""
        for node in self.nodes:
            node.stop()

    def close(self) -> None:
        """Kill every node and remove its directory."""
        for node in self.nodes:
            node.close()

    def _create(self, timeout: float) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisUnavailableError("redis-cli is not on PATH (it creates the cluster).")
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        result = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RedisUnavailableError(f"redis-cli --cluster create failed:\n{result.stdout}")

    @staticmethod
    def _state_ok(node: RedisProcess) -> bool:
        client = redis.Redis(port=node.port, socket_timeout=1)
        try:
            info = client.cluster("INFO")
        except redis.RedisError:
            return False
        finally:
            client.close()
        return bool(info.get("cluster_state") == "ok")
