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

from tests.support.managed_service import ManagedService


class DelayingProxy(ManagedService):
    """Forwards 127.0.0.1:`port` to `target_port`, delaying each chunk by `delay` seconds."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so that the accepting thread notices `close`
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Accept and forward connections (the listener is bound already)."""
        self._acceptor.start()

    def stop(self) -> None:
        """Close the listener and every forwarded connection; a proxy is not started twice."""
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        if self._acceptor.is_alive():  # never started, when closed by a failed set-up
            self._acceptor.join(timeout=5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue  # no connection yet, or the listener was closed
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()  # the server refused: the client sees its connection close
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
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
