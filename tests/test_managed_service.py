"""The one base of the test support's services: a failed start and an early finalizer leave
nothing behind."""

from __future__ import annotations

import socket

import pytest
import redis

from tests.support.hanging_server import HangingServer
from tests.support.helpers import wait_for
from tests.support.redis_cluster import RedisClusterProcesses
from tests.support.redis_server import RedisProcess, RedisUnavailableError
from tests.support.tcp_proxy import DelayingProxy


def test_a_start_that_fails_closes_the_service_before_the_error_goes_on() -> None:
    server = RedisProcess(executable="/bin/false")  # exits at once: never answers PING
    with pytest.raises(RedisUnavailableError), server:
        pass
    assert not server.running
    assert not server.dir.exists()


def test_close_is_safe_before_start_and_twice() -> None:
    proxy = DelayingProxy(target_port=1)
    proxy.close()
    proxy.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)


@pytest.mark.redis
def test_leaving_the_block_closes_the_service(redis_process: RedisProcess) -> None:
    with (
        DelayingProxy(redis_process.port) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1) as client,
    ):
        client.sendall(b"PING\r\n")
        assert client.recv(64) == b"+PONG\r\n"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)


def test_a_hanging_server_accepts_answers_nothing_and_lets_go_when_closed() -> None:
    with socket.socket() as client:
        with HangingServer() as server:
            client.connect(("127.0.0.1", server.port))
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for(lambda: server.accepted == 1, "the connection accepted")
        # Closed: had it answered anything, those bytes would come before the end.
        try:
            answer = client.recv(64)
        except ConnectionResetError:  # closed with the request unread
            answer = b""
    assert answer == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)


def test_a_new_cluster_whose_drawn_port_is_taken_draws_its_ports_again() -> None:
    """A port drawn free can be bound by another test's server before the node binds it (seen
    in `make test`: a node's cluster bus port); a cluster not created yet starts elsewhere."""
    cluster = RedisClusterProcesses()
    options = cluster.nodes[1].extra_args
    bus = int(options[options.index("--cluster-port") + 1])
    first = cluster.nodes[0].dir
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", bus))
        squatter.listen()
        with cluster:
            client = redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
            try:
                assert client.set("k", "v") and client.get("k") == b"v"
            finally:
                client.close()
            assert bus not in {node.port for node in cluster.nodes}
        assert not first.exists()  # the first draw's nodes were closed
