"""A loopback TCP server that accepts every connection and never answers: a hung upstream.

Unlike a closed port (refused at once), a client connected here waits for a reply that never
comes, as it would with an overloaded API or a dropped route; only its own timeout ends the wait.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.managed_service import ManagedService


class HangingServer(ManagedService):
    """Accepts on 127.0.0.1:`port`, reads nothing back, holds each connection until `stop()`."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so that the accepting thread notices `stop`
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="hang-accept", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Accept connections (the listener is bound already)."""
        self._acceptor.start()

    def stop(self) -> None:
        """Close the listener and every held connection."""
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._held:
                with contextlib.suppress(OSError):
                    sock.close()
        if self._acceptor.is_alive():  # never started, when closed by a failed set-up
            self._acceptor.join(timeout=5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue  # no connection yet, or the listener was closed
            with self._lock:
                self._held.append(client)
                self.accepted += 1
