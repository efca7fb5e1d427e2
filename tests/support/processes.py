"""`recommender serve` as a real child process that a test may kill, stop and start again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.support.helpers import REPO
from tests.support.managed_service import ManagedService
from tests.support.redis_server import _die_with_parent, free_port


class ServeProcess(ManagedService):
    """`recommender serve ARGS` on a fixed loopback port (kept across restarts), in its own
    session; ready once `ready_path` answers 200.

    `env` is added to this process's environment (REDIS_URL is dropped unless given); the
    server's output goes to `log`. It dies with the test run, even one killed outright.
    """

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *,
        args: Sequence[str] = (),
        ready_path: str = "/readyz",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
        self._env.update(env)
        self._args = list(args)
        self._ready_path = ready_path
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until /readyz answers 200."""
        assert self._process is None, "the server is already running"
        command = [sys.executable, "-m", "console", "serve", "--port", str(self.port), *self._args]
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                command, cwd=REPO, env=self._env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its workers are signalled with it
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            assert self._process.poll() is None, f"the server exited:\n{self.log_tail()}"
            try:
                if httpx.get(f"{self.url}{self._ready_path}", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not ready within {timeout} s:\n{self.log_tail()}"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no request is finished."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM, as an orchestrator's restart would: uvicorn finishes open requests."""
        self._end(signal.SIGTERM)

    def close(self) -> None:
        """Kill: a test that is over waits for no request."""
        self.kill()

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the server to end by itself (a crash test's fault point); its exit code."""
        process, self._process = self._process, None
        assert process is not None, "the server is not running"
        return process.wait(timeout=timeout)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def _end(self, signum: int) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        # The whole group, even when the server itself is gone: uvicorn's workers outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        if process.poll() is not None:
            return
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
