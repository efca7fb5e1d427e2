"""A private `redis-server` process for tests: start, stop, kill, pause with SIGSTOP."""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.managed_service import ManagedService
from tests.support.tls_files import TlsFiles

INSTALL_HINT = (
    "Redis is needed for these tests: install redis-server (e.g. `apt-get install "
    "redis-server`) so it is on PATH, or set REDIS_URL to a Redis the tests may write to."
)


class RedisUnavailableError(RuntimeError):
    """No redis-server could be started."""


def _ephemeral_ports() -> tuple[int, int]:
    """The range the kernel draws clients' local ports from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


#: Servers' ports come from below the kernel's ephemeral range, so that no client connection of
#: the suite (thousands of them) is ever given the port of a server that is restarting.
_SERVER_PORTS = range(20_000, min(_ephemeral_ports()[0], 32_768))
_draw = random.SystemRandom()  # not the seeded test rng: two xdist workers must not agree


def free_port() -> int:
    """A loopback TCP port that nothing listens on now, outside the ephemeral range: a server
    restarted on it finds it free unless another test drew the very same port meanwhile."""
    for _ in range(1000):
        port = _draw.choice(_SERVER_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free loopback port below the ephemeral range")


def _die_with_parent() -> None:
    # Runs in the child before exec: a test run killed outright must not leave servers behind.
    # The signal follows the *thread* that started the server, so start it from the main one.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class RedisProcess(ManagedService):
    """A `redis-server` on a fixed loopback port, without persistence, in a temp dir.

    The port is chosen once, so `start()` after `kill()` or `stop()` comes back on the same
    address, as a restarted Redis would. With `tls` the port speaks TLS only, and clients must
    present a certificate signed by the test CA. `extra_args` are more server options; given
    after the defaults, they override them (e.g. `--appendonly yes`: persistence in `dir`).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        unix_socket: bool = False,
        executable: str | None = None,
        tls: TlsFiles | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RedisUnavailableError("redis-server is not on PATH.")
        self.executable = found
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self.socket_path = self.dir / "redis.sock" if unix_socket else None
        self.tls = tls
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "redis" if self.tls is None else "rediss"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        if self.socket_path is None:
            raise RuntimeError("this RedisProcess was made without unix_socket=True")
        return f"unix://{self.socket_path}?db=0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        if self.running:
            raise RuntimeError("redis-server is already running")
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            *self.extra_args,
        ]  # fmt: skip
        if self.tls is not None:
            args += [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls.server_cert),
                "--tls-key-file", str(self.tls.server_key),
                "--tls-ca-cert-file", str(self.tls.ca_cert),
                "--tls-auth-clients", "yes",
            ]  # fmt: skip
        if self.socket_path is not None:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        log_path = self.dir / "redis.log"
        with log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                args,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + timeout
        while not self._answers_ping():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                log = log_path.read_text(errors="replace")[-2000:]
                raise RedisUnavailableError(
                    f"redis-server on port {self.port} did not answer PING:\n{log}"
                )
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM), resuming it first if paused."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Kill the server outright (SIGKILL), as a crash would."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        self._proc = None

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections open, nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def close(self) -> None:
        """Kill the server and remove its directory."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _signal(self, signum: int) -> None:
        if not self.running:
            raise RuntimeError("redis-server is not running")
        assert self._proc is not None
        os.kill(self._proc.pid, signum)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
                if self.tls is None:
                    return _ping(raw)
                context = self.tls.client_context()
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped:
                    return _ping(wrapped)
        except OSError:
            return False


def _ping(sock: socket.socket) -> bool:
    sock.sendall(b"PING\r\n")
    return sock.recv(64).startswith(b"+PONG")
