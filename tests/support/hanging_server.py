"""A loopback TCP server that accepts every connection and never answers: a hung upstream.

Unlike a closed port (refused at once), a client connected here waits for a reply that never
comes, as it would with an overloaded API or a dropped route; only its own timeout ends the wait.
"""

from __future__ import annotations

import socket

from tests.support.loopback_listener import LoopbackListener


class HangingServer(LoopbackListener):
    """Accepts on 127.0.0.1:`port`, reads nothing back, holds each connection until `stop()`."""

    def __init__(self) -> None:
        super().__init__("hang-accept")
        self.accepted = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _take(self, client: socket.socket) -> None:
        self._keep(client)
        with self._lock:
            self.accepted += 1
