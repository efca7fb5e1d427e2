"""What a process costs in memory (Linux /proc): the peak of a command run to its end, and the
private and shared memory of a running one."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.report import BenchError

#: How often a running command's high-water mark is read.
POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Finished:
    """A command run to its end."""

    returncode: int
    seconds: float
    """Wall seconds from its start to its exit."""
    cpu_seconds: float
    """User + system CPU seconds of it and the children it waited for (a busy machine
    disturbs these far less than wall seconds)."""
    peak_bytes: int
    """Its peak resident memory: VmHWM of /proc/PID/status, read every `POLL_SECONDS` until it
    exits (its own memory since `exec`; 0 if it ended before the first read). Not `ru_maxrss`
    from `wait4`: a child's starts at its parent's high-water mark, inherited at the fork."""


def high_water_bytes(pid: int) -> int:
    """VmHWM of a running process; 0 once it has exited (a zombie has no memory left)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_to_end(
    command: Sequence[str], *, env: Mapping[str, str], stdout: Path, stderr: Path
) -> Finished:
    """Run `command` with its output in two files; its exit code, wall time and peak memory."""
    peak = 0
    with stdout.open("wb") as out, stderr.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=dict(env))
        try:
            # wait4 rather than Popen.poll: the child's CPU time comes with its exit status
            while not (waited := os.wait4(process.pid, os.WNOHANG))[0]:
                peak = max(peak, high_water_bytes(process.pid))
                time.sleep(POLL_SECONDS)
        except BaseException:
            process.kill()
            process.wait()
            raise
        seconds = time.perf_counter() - started
    _, status, usage = waited
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
    return Finished(process.returncode, seconds, usage.ru_utime + usage.ru_stime, peak)


@dataclass(frozen=True, slots=True)
class ProcessMemory:
    """One process's memory from /proc/PID/smaps_rollup, in bytes.

    `private` is what only this process maps (Private_Clean + Private_Dirty: its heap, and file
    pages no other process has touched); `shared` what other processes map too (Shared_Clean +
    Shared_Dirty: e.g. memory-mapped version files that every worker reads); `pss` charges
    each shared page to its sharers in equal parts.
    """

    pid: int
    rss: int
    pss: int
    private: int
    shared: int


def memory_rollup(pid: int) -> ProcessMemory:
    """The memory of the running process `pid` (Linux 4.14+)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError as exc:
        raise BenchError(f"cannot read the memory of process {pid}: {exc}") from None
    kib: dict[str, int] = {}
    for line in text.splitlines()[1:]:  # the first line names the address range
        name, _, value = line.partition(":")
        kib[name] = int(value.split()[0])
    return ProcessMemory(
        pid=pid,
        rss=kib["Rss"] * 1024,
        pss=kib["Pss"] * 1024,
        private=(kib["Private_Clean"] + kib["Private_Dirty"]) * 1024,
        shared=(kib["Shared_Clean"] + kib["Shared_Dirty"]) * 1024,
    )


def serving_processes(pid: int, workers: int) -> list[int]:
    """The processes of `recommender serve` (pid `pid`, started with `workers`) that answer
    requests: with one worker uvicorn serves in that process itself, with more in its spawned
    workers (`worker_processes`)."""
    return [pid] if workers == 1 else worker_processes(pid)


def worker_processes(pid: int) -> list[int]:
    """The worker processes of the uvicorn supervisor `pid` (its children started by
    multiprocessing's spawn, not its resource tracker), in pid order."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == pid and b"spawn_main" in command:
            workers.append(int(entry.name))
    return sorted(workers)
