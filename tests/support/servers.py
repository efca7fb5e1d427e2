"""A real uvicorn server for tests: in a thread, on a free loopback port, stopped by itself."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


@contextmanager
def running_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws="none",
        lifespan="on",
        log_config=None,  # keep pytest's log capture in charge
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    app_server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            app_server.run(sockets=[sock])
        except BaseException as exc:  # reported by the test, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=serve, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not app_server.started:
            assert thread.is_alive() and not failure, f"uvicorn did not start: {failure}"
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        app_server.should_exit = True
        thread.join(timeout=15)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop within 15 s"
    assert not failure, f"uvicorn failed: {failure}"
