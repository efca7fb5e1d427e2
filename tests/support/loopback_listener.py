"""A loopback TCP listener with its own accepting thread: the base of the test servers that
stand in for a broken network (`HangingServer`, `DelayingProxy`)."""

from __future__ import annotations

import contextlib
import socket
import threading
from abc import abstractmethod

from tests.support.managed_service import ManagedService


class LoopbackListener(ManagedService):
    """Listens on 127.0.0.1:`port` from construction; `start` accepts, each connection handed
    to `_take`; `stop` closes the listener and every socket kept in `_sockets`."""

    def __init__(self, thread_name: str) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so that the accepting thread notices `stop`
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name=thread_name, daemon=True)

    def start(self) -> None:
        """Accept connections (the listener is bound already); a listener is not started twice."""
        self._acceptor.start()

    def stop(self) -> None:
        """Close the listener and every kept connection."""
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
            self._take(client)

    def _keep(self, *sockets: socket.socket) -> None:
        """Close these with the listener."""
        with self._lock:
            self._sockets.extend(sockets)

    @abstractmethod
    def _take(self, client: socket.socket) -> None:
        """What becomes of an accepted connection."""
