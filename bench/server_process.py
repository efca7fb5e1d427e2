"""A service under measurement: the demo corpus indexed, `recommender serve` (or the ceiling app)
started as a process and waited for, its CPU time read from /proc."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import BenchError

REPO = Path(__file__).resolve().parents[1]


DEMO_SOURCES = (REPO / "demo" / "articles.jsonl", REPO / "demo" / "putin-victory-alaska-summit.txt")


def _process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user + system CPU seconds) of every process (Linux /proc; else {})."""
    stats: dict[int, tuple[int, float]] = {}
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return stats
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in entries:
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = text[text.rindex(")") + 2 :].split()
        # fields[0] is the state (stat field 3): ppid is field 4, utime/stime 14/15
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return stats


def _tree(stats: dict[int, tuple[int, float]], pid: int) -> set[int]:
    if pid not in stats:
        return set()
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, (ppid, _) in stats.items() if ppid == parent]
        tree.update(children)
        frontier += children
    return tree


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, e.g. a server and its workers (Linux /proc; else [])."""
    return sorted(_tree(_process_table(), pid))


def process_tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid` and its descendants (Linux /proc; else None)."""
    stats = _process_table()
    tree = _tree(stats, pid)
    return sum(stats[member][1] for member in tree) if tree else None


def process_tree_run_wait_seconds(pid: int) -> float | None:
    """Seconds the threads of `pid` and its descendants were ready to run but waited for a CPU
    (Linux /proc/PID/task/TID/schedstat; else None): what other processes cost them."""
    members = process_tree(pid)
    if not members:
        return None
    waited = 0
    for member in members:
        for stat in Path(f"/proc/{member}/task").glob("*/schedstat"):
            try:
                waited += int(stat.read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue  # exited meanwhile, or no scheduler statistics
    return waited / 1e9


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def every_worker_metrics(port: int, workers: int, patience_s: float = 10.0) -> dict[str, str]:
    """GET /metrics of each of the server's `workers` processes, by pid.

    The workers share the listening socket and whichever accepts a connection answers (a
    worker still starting accepts none), so /metrics is read over new connections until
    every worker has answered once.
    """
    by_worker: dict[str, str] = {}
    deadline = time.monotonic() + patience_s
    while True:
        text = http_get(port, "/metrics")[1].decode()
        by_worker[_answering_worker(text)] = text
        if len(by_worker) >= workers:
            return by_worker
        if time.monotonic() > deadline:
            raise BenchError(
                f"{len(by_worker)} of {workers} workers answered GET /metrics in {patience_s:g} s"
            )
        time.sleep(0.01)


def cache_counters(server: Server) -> tuple[float, float]:
    """(hits, misses) of the result cache, summed over every worker of `server`."""
    answers = every_worker_metrics(server.port, server.workers).values()
    counted = [_cache_counters(text) for text in answers]
    return sum(hits for hits, _ in counted), sum(misses for _, misses in counted)


def _answering_worker(metrics: str) -> str:
    for line in metrics.splitlines():
        if line.startswith("recommender_worker_info{"):
            return line.split('pid="', 1)[1].split('"', 1)[0]
    raise BenchError("GET /metrics does not name its worker (recommender_worker_info)")


def _cache_counters(metrics: str) -> tuple[float, float]:
    values = {"hits": 0.0, "misses": 0.0}
    for line in metrics.splitlines():
        for name in values:
            if line.startswith(f"recommender_cache_{name}_total "):
                values[name] = float(line.split()[1])
    return values["hits"], values["misses"]


@dataclass
class Server:
    """A uvicorn process serving the benchmark app."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    workers: int
    worker_pids: list[int] = field(default_factory=list)
    """Each worker's, once it answered (`run_server` waits for all)."""

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def run_server(
    data_dir: Path,
    workers: int,
    log_dir: Path,
    *,
    name: str,
    redis_url: str | None,
    access_log: bool,
    extra_env: dict[str, str] | None = None,
    cli_serve: bool = False,
    drop_env: Collection[str] = (),
) -> Iterator[Server]:
    """Start uvicorn as `recommender serve` does (plus the ceiling) and wait until ready.

    With `cli_serve`, the process is `recommender serve` itself, without the ceiling. The
    server's environment is this process's, less the Redis URL and `drop_env`, plus `extra_env`.
    """
    port = free_port()
    dropped = {"REDIS_URL", "RECOMMENDER_REDIS_URL", *drop_env}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env["RECOMMENDER_DATA_DIR"] = str(data_dir)
    if redis_url:
        env["REDIS_URL"] = redis_url
        # keys of their own, which expire with the cache TTL
        env["RECOMMENDER_CACHE_NAMESPACE"] = f"bench:{uuid.uuid4().hex[:12]}:"
    env.update(extra_env or {})
    if cli_serve:
        command = [sys.executable, "-m", "console", "serve", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", str(workers)]  # fmt: skip
        command += ["--access-log"] if access_log else []
    else:
        command = [
            sys.executable, "-m", "uvicorn", "--factory",
            "bench.ceiling_app:create_bench_app_from_environment",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "info" if access_log else "warning",
        ]  # fmt: skip
        if not access_log:
            command.append("--no-access-log")
    log = log_dir / f"server-{name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    server = Server(port, process, log, workers)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise BenchError(f"the server exited ({process.returncode}):\n{server.log_tail()}")
            with contextlib.suppress(OSError):
                if http_get(port, "/readyz", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"the server was not ready after 120 s:\n{server.log_tail()}")
            time.sleep(0.1)
        # one worker answered: the others may still be loading the version
        patience = max(deadline - time.monotonic(), 1.0)
        server.worker_pids = sorted(
            int(pid) for pid in every_worker_metrics(port, workers, patience)
        )
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def index_corpus(sources: Sequence[Path], data_dir: Path) -> None:
    """`recommender reindex` in a child process (the model stays out of this one)."""
    command = [sys.executable, "-m", "console", "reindex", "--data-dir", str(data_dir)]
    for source in sources:
        command += ["--source", str(source)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BenchError(f"reindex failed ({completed.returncode}):\n{completed.stderr.strip()}")


def index_slugs(data_dir: Path) -> list[str]:
    """Slugs of the published version, in row order."""
    from index.serving.version_loader import load_current
    from recommender.settings import Settings

    version, _ = load_current(Settings(data_dir=data_dir).index)
    return [card["slug"] for card in version.cards]


def index_demo_with_fake_model(data_dir: Path) -> None:
    """The demo corpus indexed into `data_dir` with the deterministic fake model, in this
    process (for benchmarks that measure serving, not the model)."""
    from index.versions.reindex_pipeline import reindex
    from recommender.encoding.hashing_encoder import HashingEncoder
    from recommender.settings import Settings

    reindex(
        Settings(data_dir=data_dir, model="fake-hashing").index,
        list(DEMO_SOURCES),
        HashingEncoder(),
    )
