"""PostgreSQL for tests: the machine's server (for throwaway databases, made by
`bench.throwaway_database`), and a private `postgres` process in a temp dir that a test may
kill, pause (SIGSTOP) and restart."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import psycopg

from tests.support.managed_service import ManagedService
from tests.support.redis_server import free_port

#: The machine's server (trust auth); `RECOMMENDER_TEST_POSTGRES` overrides it.
ADMIN_URL = os.environ.get(
    "RECOMMENDER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
INSTALL_HINT = (
    "PostgreSQL is needed for these tests: run one on 127.0.0.1:5432 with trust auth for user "
    "postgres (e.g. `apt-get install postgresql`), or set RECOMMENDER_TEST_POSTGRES to a "
    "server URL whose user may create databases."
)


class PostgresUnavailableError(RuntimeError):
    """No private PostgreSQL server can be made here."""


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found and shutil.which("initdb") is None:
        raise PostgresUnavailableError("initdb is neither on PATH nor in /usr/lib/postgresql")
    return Path(found[-1]).parent if found else Path(str(shutil.which("initdb"))).parent


def _as_postgres_user() -> None:
    # PostgreSQL refuses to run as root: drop to the `postgres` account when started as root.
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)


class PostgresProcess(ManagedService):
    """A `postgres` server of its own (trust auth, no fsync) on a fixed loopback port.

    `kill()` and `pause()` signal the postmaster and every backend (each backend is a session
    leader of its own, so a process group would miss them), as a crash or a frozen machine
    would.
    """

    def __init__(self) -> None:
        self.bin = _binaries()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="postgres-test-"))
        self._proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.dir, account.pw_uid, account.pw_gid)
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres",
             "--auth=trust", "--no-sync"],
            check=True, capture_output=True, preexec_fn=_as_postgres_user,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            raise RuntimeError("postgres is already running")
        log = (self.dir / "postgres.log").open("ab")
        self._proc = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.dir / "data"), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
             "-c", "fsync=off"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_as_postgres_user, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    text = (self.dir / "postgres.log").read_text(errors="replace")[-2000:]
                    self.kill()
                    raise PostgresUnavailableError(f"postgres did not start:\n{text}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Shut down fast (SIGINT), resuming first if paused."""
        if self.running:
            assert self._proc is not None
            self._group(signal.SIGCONT)
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._proc = None

    def kill(self) -> None:
        """Kill the server and every backend outright (SIGKILL), as a crash would."""
        if self._proc is not None:
            backends = self._group(signal.SIGKILL) if self._proc.poll() is None else []
            self._proc.wait()
            # A restart needs every backend gone (they hold the shared memory).
            deadline = time.monotonic() + 10
            while any(Path(f"/proc/{pid}").exists() for pid in backends):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        self._proc = None

    def pause(self) -> None:
        """Freeze the server and its backends (SIGSTOP): connections open, nothing answers."""
        self._group(signal.SIGSTOP)

    def resume(self) -> None:
        self._group(signal.SIGCONT)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _group(self, signum: int) -> list[int]:
        """Signal the postmaster first (so it forks no new backend), then its children; returns
        the children signalled."""
        assert self._proc is not None
        postmaster = self._proc.pid
        children = set(_children(postmaster))
        with suppress(ProcessLookupError):
            os.kill(postmaster, signum)
        children.update(_children(postmaster))
        for child in children:
            with suppress(ProcessLookupError):
                os.kill(child, signum)
        return sorted(children)


def _children(pid: int) -> list[int]:
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in listed.split()]
