"""A loopback TCP proxy that can hold back every byte it forwards: a slow network at the I/O edge.

The app talks to the proxy as it would to Redis; the proxy forwards to the real server. With
`delay` set, each chunk read from either side is sent on only after that many seconds, so every
reply arrives late (a congested link, an overloaded host) while the server itself is healthy.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from tests.support.loopback_listener import LoopbackListener


class DelayingProxy(LoopbackListener):
    """Forwards 127.0.0.1:`port` to `target_port`, delaying each chunk by `delay` seconds."""

    def __init__(self, target_port: int) -> None:
        super().__init__("proxy-accept")
        self.target_port = target_port
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _take(self, client: socket.socket) -> None:
        client.settimeout(None)
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            client.close()  # the server refused: the client sees its connection close
            return
        upstream.settimeout(None)
        self._keep(client, upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(
                target=self._pump, args=(source, sink), name="proxy-pump", daemon=True
            ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if self.delay:
                    time.sleep(self.delay)
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
