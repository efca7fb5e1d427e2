"""The HTTP load of the benchmarks and the soak: wrk driven by a Lua script over a list of paths."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from api.cli.cli_toolkit import fail
from bench.report import BenchError
from bench.server_process import Server, cache_counters, process_tree_cpu_seconds

WRK_INSTALL_HINT = (
    "wrk (the HTTP load generator) is not installed. Install it with "
    "`apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk` (macOS), "
    "or pass --wrk PATH."
)


def require_wrk(wrk: str) -> str:
    """The path of the wrk executable `wrk` names; the CLI fails with an install hint without it."""
    path = shutil.which(wrk)
    if path is None:
        raise fail(WRK_INSTALL_HINT)
    return path


#: Pause before the first request of every connection (see COMMON_SCRIPT), not measured.
START_PAUSE_SECONDS = 0.25


#: What every script shares: a thread number per wrk thread (`offset`), the start pause and
#: the result line; a script adds its own `request()` (and may use `offset` in `init`).
COMMON_SCRIPT = """
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

-- Each connection's first request waits until all are open: a saturated uvloop server
-- accepts one new connection per loop iteration, and without this pause the requests of the
-- last connections to be accepted wait for hundreds of ms, a start-up artefact that would
-- dominate p99. wrk starts its latency clock when a request is sent, after this pause.
local first_requests = 0

function delay()
  if first_requests < %(per_thread)d then
    first_requests = first_requests + 1
    return %(pause_ms)d
  end
  return 0
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%%d,"duration_us":%%d,"p50":%%d,"p90":%%d,"p99":%%d,' ..
    '"max":%%d,"errors":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""

PATHS_SCRIPT = """
local paths = {}
for line in io.lines([==[%(paths_file)s]==]) do
  paths[#paths + 1] = line
end
local count = #paths
local next_index = 0

function init(args)
  -- threads start far apart in the cycle, so they do not ask for the same key together
  next_index = math.floor((offset or 0) * count / %(threads)d)
end

function request()
  next_index = next_index %% count + 1
  return wrk.format("GET", paths[next_index])
end
"""


#: Replaces COMMON_SCRIPT's `delay()` (a later definition wins) to send at a fixed rate: each
#: request, on whichever connection is free, takes the next slot of one schedule (the first
#: after the start pause) and waits for it. Latencies count from the send, so a connection
#: still waiting for its answer when its slot comes sends late, unmeasured (wrk2's coordinated
#: omission): give the run enough connections that none waits longer than the slots they hold.
PACING_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } pacing_timespec;
int clock_gettime(int clock, pacing_timespec *now);
]]
local clock_now = ffi.new("pacing_timespec")
local next_slot = nil

local function now_ms()
  ffi.C.clock_gettime(1, clock_now)  -- CLOCK_MONOTONIC
  return tonumber(clock_now.tv_sec) * 1000 + tonumber(clock_now.tv_nsec) / 1e6
end

function delay()
  local now = now_ms()
  next_slot = next_slot or now + %(pause_ms)d
  local slot = next_slot
  next_slot = next_slot + %(interval_ms).6f
  return math.max(0, math.floor(slot - now))
end
"""


def pacing_script(threads: int, requests_per_second: float) -> str:
    """The `delay()` that makes each of `threads` wrk threads send its share of
    `requests_per_second` on schedule (see PACING_SCRIPT); it goes after `common_script`."""
    return PACING_SCRIPT % {
        "pause_ms": round(START_PAUSE_SECONDS * 1000),
        "interval_ms": 1000 * threads / requests_per_second,
    }


def common_script(threads: int, connections: int) -> str:
    """The shared part of a wrk script (see COMMON_SCRIPT) for `connections` over `threads`."""
    return COMMON_SCRIPT % {
        "per_thread": connections // threads,  # wrk gives each thread this many
        "pause_ms": round(START_PAUSE_SECONDS * 1000),
    }


def wrk_script(paths_file: Path, threads: int, connections: int) -> str:
    """A wrk Lua script cycling over the paths in `paths_file` (one a line)."""
    own = PATHS_SCRIPT % {"paths_file": paths_file, "threads": threads}
    return own + common_script(threads, connections)


def run_wrk(
    wrk: str, script: Path, port: int, *, threads: int, connections: int, seconds: int
) -> dict[str, int]:
    """Run wrk with `script` against the server on `port`; the numbers of its result line."""
    command = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(script), f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BenchError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    return parse_wrk_output(completed.stdout)


def parse_wrk_output(output: str) -> dict[str, int]:
    """The numbers of the script's result line (latencies in microseconds)."""
    for line in output.splitlines():
        if line.startswith("BENCH-RESULT "):
            parsed: dict[str, int] = orjson.loads(line.removeprefix("BENCH-RESULT "))
            return parsed
    raise BenchError(f"wrk printed no result:\n{output.strip()}")


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured wrk run of one variant."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    hits: float
    misses: float
    server_cpu_seconds: float | None

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Load:
    """How wrk drives every variant."""

    wrk: str
    seconds: int
    warmup: int
    threads: int
    connections: int
    script_dir: Path

    def run(self, port: int, paths: Sequence[str], seconds: int) -> dict[str, int]:
        paths_file = self.script_dir / "paths.txt"
        paths_file.write_text("".join(path + "\n" for path in paths), encoding="utf-8")
        script = self.script_dir / "paths.lua"
        script.write_text(wrk_script(paths_file, self.threads, self.connections), encoding="utf-8")
        return run_wrk(
            self.wrk, script, port,
            threads=self.threads, connections=self.connections, seconds=seconds,
        )  # fmt: skip

    def measure(self, server: Server, paths: Sequence[str]) -> Sample:
        """Warm up, then measure; the cache counters say how requests were answered."""
        if self.warmup > 0:
            self.run(server.port, paths, self.warmup)
        hits_before, misses_before = cache_counters(server)
        cpu_before = process_tree_cpu_seconds(server.process.pid)
        raw = self.run(server.port, paths, self.seconds)
        cpu_after = process_tree_cpu_seconds(server.process.pid)
        hits, misses = cache_counters(server)
        cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        return Sample(
            requests=raw["requests"],
            seconds=raw["duration_us"] / 1e6 - START_PAUSE_SECONDS,
            p50_ms=raw["p50"] / 1000,
            p90_ms=raw["p90"] / 1000,
            p99_ms=raw["p99"] / 1000,
            max_ms=raw["max"] / 1000,
            errors=raw["errors"],
            hits=hits - hits_before,
            misses=misses - misses_before,
            server_cpu_seconds=cpu,
        )
