"""`recommender bench events`: how many widget events one worker takes, and how fast it answers,
with the impression log on PostgreSQL (or, with `--log files`, in the data directory).

The demo corpus is indexed with the deterministic fake model; one `recommender serve` worker
(per-client rate limit off: every beacon comes from 127.0.0.1) serves it, with a throwaway
database made on `--server` (dropped afterwards). The related lists of `--sources` articles
give real signed feedback tokens; wrk then posts beacons as the widget does (text/plain JSON):
for every box, one beacon with an impression of each of its items, and for one box in
`--click-every` a second beacon with a click on one of them (default 20: 5 % of boxes clicked,
the top of issue 31's 1-5 %; 1 clicks every box, the most requests per event). Every box gets
an impression id of its own, so every event is accepted.

Two measured runs: saturated (`--connections` posting back to back: events/s is what the
worker can take) and paced at the target's 5,000 events/s (`--paced-connections` sending on a
fixed schedule: p99 is the latency of beacons arriving at that rate, not of beacons queued
behind `--connections` others, which Little's law sets at connections / throughput). Events/s
is what the service accepted while measured (`/v1/stats/ctr` before and after), latencies are
wrk's per beacon. Afterwards the log must hold every accepted event or count it dropped, and
have dropped none at the target's rate (saturated, the log writer may fall behind the worker
that shares its 2 cores with wrk and PostgreSQL: it drops and counts rather than slow readers).
Target (issue 31): >= 5,000 events/s with p99 <= 20 ms.
"""

from __future__ import annotations

import http.client
import os
import secrets
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from api.cli.cli_toolkit import JsonOption, fail
from bench.report import BenchError, format_rows, say
from bench.server_process import (
    DEMO_SOURCES,
    Server,
    http_get,
    index_demo_with_fake_model,
    process_tree_cpu_seconds,
    process_tree_run_wait_seconds,
    run_server,
)
from bench.throwaway_database import LOCAL_SERVER, throwaway_database
from bench.wrk_load import (
    START_PAUSE_SECONDS,
    common_script,
    pacing_script,
    require_wrk,
    run_wrk,
)

TARGET_EVENTS_PER_SECOND = 5000.0
TARGET_P99_MS = 20.0
#: The paced run must take this share of the target rate at least: wrk's delays are whole
#: milliseconds and the counters are read a few beacons off the run's edges.
PACED_SHARE = 0.98
TOKEN = "bench-events-token"
PLACEMENT = "bench"
#: Stand-in for each box's impression id in the beacon templates; wrk writes a fresh one.
ID_MARK = "@ID@"
EXAMPLES = (
    "Examples:\n\n"
    "  recommender bench events\n\n"
    "  recommender bench events --log files --duration 20 --connections 32 --json\n\n"
    "  recommender bench events --paced-connections 128"
)


class LogBackend(StrEnum):
    postgres = "postgres"
    files = "files"


#: Each box: its impressions beacon, then (one box in `click_every`) its click beacon, both
#: with the box's own id:
#: `<tag><wrk thread, 2 digits><box number, 12 digits>` (16-64 of [A-Za-z0-9_-]).
BEACON_SCRIPT = """
local boxes = {}
for line in io.lines([==[%(templates_file)s]==]) do
  local tab = line:find("\\t", 1, true)
  boxes[#boxes + 1] = {line:sub(1, tab - 1), line:sub(tab + 1)}
end
local count = #boxes
local headers = {["Content-Type"] = "text/plain;charset=UTF-8"}
local box = 0
local made = 0
local click = nil

function init(args)
  box = math.floor((offset or 0) * count / %(threads)d)
end

function request()
  if click then
    local body = click
    click = nil
    return wrk.format("POST", "/v1/events", headers, body)
  end
  made = made + 1
  box = box %% count + 1
  local id = string.format("%(tag)s%%02d%%012d", offset or 0, made)
  if made %% %(click_every)d == 0 then
    click = (boxes[box][2]:gsub("%(mark)s", id))
  end
  return wrk.format("POST", "/v1/events", headers, (boxes[box][1]:gsub("%(mark)s", id)))
end
"""


@dataclass(frozen=True)
class EventsResult:
    log: str
    connections: int
    click_every: int
    seconds: float
    beacons: int
    errors: int
    events_per_second: float
    beacons_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    paced_connections: int
    paced_beacons: int
    paced_errors: int
    paced_events_per_second: float
    paced_p50_ms: float
    paced_p99_ms: float
    paced_max_ms: float
    cpu_us_per_beacon: float | None
    """The worker's CPU (all its threads) per beacon, saturated; None off Linux."""
    paced_cpu_us_per_beacon: float | None
    paced_cpu_wait_seconds: float | None
    """How long the worker's threads were ready to run but waited for a CPU in the paced run."""
    accepted: int
    refused: dict[str, int]
    logged: int
    log_written: int
    log_dropped: int
    paced_log_dropped: int
    """Of `log_dropped`, those of the paced run."""
    log_failed: int


def verdict(result: EventsResult) -> list[str]:
    """What the run missed of the target and of its own consistency (empty: PASS)."""
    missed = []
    if result.events_per_second < TARGET_EVENTS_PER_SECOND:
        missed.append(f"events/s {result.events_per_second:g} < {TARGET_EVENTS_PER_SECOND:g}")
    if result.paced_events_per_second < TARGET_EVENTS_PER_SECOND * PACED_SHARE:
        missed.append(
            f"paced at {result.paced_events_per_second:g} events/s, "
            f"not {TARGET_EVENTS_PER_SECOND:g}"
        )
    if result.paced_p99_ms > TARGET_P99_MS:
        missed.append(
            f"p99 at {TARGET_EVENTS_PER_SECOND:g} events/s {result.paced_p99_ms:g} ms "
            f"> {TARGET_P99_MS:g} ms"
        )
    if result.errors + result.paced_errors:
        missed.append(f"{result.errors + result.paced_errors} beacons failed")
    if any(result.refused.values()):
        missed.append(f"{sum(result.refused.values())} events refused")
    if result.paced_log_dropped:
        missed.append(
            f"{result.paced_log_dropped} events dropped from the log at "
            f"{TARGET_EVENTS_PER_SECOND:g} events/s"
        )
    if result.logged + result.log_dropped != result.accepted:
        missed.append(
            f"the log holds {result.logged} events and dropped {result.log_dropped}, "
            f"{result.accepted} were accepted"
        )
    return missed


def demo_slugs(count: int) -> list[str]:
    """The slugs of the first `count` articles of the demo feed."""
    lines = DEMO_SOURCES[0].read_bytes().splitlines()
    return [orjson.loads(line)["slug"] for line in lines if line][:count]


def beacon_templates(port: int, sources: list[str]) -> list[str]:
    """One line per source's box: its impressions beacon and its click beacon (tab between),
    built from the served list and its token, the box's id left as `ID_MARK`."""
    lines = []
    for n, source in enumerate(sources):
        status, body = http_get(port, f"/v1/articles/{source}/related?placement={PLACEMENT}")
        if status != 200:
            raise BenchError(f"the related list of {source} was answered {status}")
        answer = orjson.loads(body)
        token = answer["feedback"]["token"]
        slugs = [item["slug"] for item in answer["items"]]
        if not slugs:
            continue

        events = [
            {"type": "impression", "source": source, "target": target, "slot": slot,
             "token": token, "impression": ID_MARK}
            for slot, target in enumerate(slugs, start=1)
        ]  # fmt: skip
        click = {**events[n % len(events)], "type": "click"}
        beacons = (orjson.dumps({"events": events}), orjson.dumps({"events": [click]}))
        lines.append("\t".join(beacon.decode() for beacon in beacons))
    if not lines:
        raise BenchError("no related list had items to post events about")
    return lines


def events_per_beacon(templates: list[str], click_every: int) -> float:
    """The mean events of the beacons `BEACON_SCRIPT` posts from `templates`: each box's
    impressions, and one click beacon for every `click_every` boxes."""
    items = [len(orjson.loads(line.partition("\t")[0])["events"]) for line in templates]
    per_box = sum(items) / len(items)
    return (click_every * per_box + 1) / (click_every + 1)


def _admin_get(port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise BenchError(f"GET {path} was answered {response.status}")
    return body


def counted(port: int) -> tuple[int, dict[str, int]]:
    """(accepted events, refused events by reason) from `/v1/stats/ctr`."""
    report = orjson.loads(_admin_get(port, "/v1/stats/ctr"))
    totals = report["totals"]
    return totals["impressions"] + totals["clicks"], report["refused"]


def log_metrics(port: int) -> dict[str, float]:
    """The impression log writer's figures (`written`, `dropped`, `failed`, `pending`)."""
    _, text = http_get(port, "/metrics")
    figures = {}
    for line in text.decode().splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("recommender_event_log_"):
            figures[name.removeprefix("recommender_event_log_").removesuffix("_total")] = float(
                value
            )
    return figures


def wait_until_logged(port: int, timeout: float = 60.0) -> dict[str, float]:
    """The log metrics once the writer has nothing pending (BenchError after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while (figures := log_metrics(port)).get("pending", 0) > 0:
        if time.monotonic() > deadline:
            raise BenchError(f"the log writer still had {figures['pending']:.0f} events pending")
        time.sleep(0.1)
    return figures


def logged_rows(data_dir: Path, database_url: str | None) -> int:
    """Events the impression log holds (yesterday to tomorrow, UTC: the run's days)."""
    from api.event_log.event_log_factory import open_event_log
    from index.state.postgres_database import PostgresState
    from recommender.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=database_url)
    postgres = None if database_url is None else PostgresState(settings.index.database)
    log = open_event_log(data_dir, postgres)
    today = datetime.now(UTC).date()
    try:
        return sum(1 for _ in log.read(today - timedelta(days=1), today + timedelta(days=1)))
    finally:
        log.close()
        if postgres is not None:
            postgres.close()


def forget_keys(redis_url: str, namespace: str) -> None:
    """Delete the run's event counters and seen ids from Redis (counters never expire)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{namespace}*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


@dataclass(frozen=True)
class Driver:
    """How wrk posts the beacons."""

    wrk: str
    connections: int
    paced_connections: int
    click_every: int
    script_dir: Path

    def post(
        self, server: Server, templates: list[str], seconds: int, events_per_second: float = 0
    ) -> dict[str, int]:
        """Post beacons for `seconds`, back to back over `connections`, or with
        `events_per_second` on schedule over `paced_connections`; every run's box ids are new
        (a tag of its own)."""
        templates_file = self.script_dir / "beacons.txt"
        templates_file.write_text("".join(line + "\n" for line in templates), encoding="utf-8")
        own = BEACON_SCRIPT % {
            "templates_file": templates_file,
            "threads": 1,
            "tag": f"b{secrets.token_hex(4)}",
            "mark": ID_MARK,
            "click_every": self.click_every,
        }
        connections = self.paced_connections if events_per_second else self.connections
        own += common_script(1, connections)
        if events_per_second:
            beacons_per_second = events_per_second / events_per_beacon(templates, self.click_every)
            own += pacing_script(1, beacons_per_second)
        script = self.script_dir / "beacons.lua"
        script.write_text(own, encoding="utf-8")
        return run_wrk(
            self.wrk, script, server.port, threads=1, connections=connections, seconds=seconds
        )


class _Usage:
    """The server's CPU seconds and CPU wait from now on."""

    def __init__(self, server: Server) -> None:
        self._pid = server.process.pid
        self._cpu = process_tree_cpu_seconds(self._pid)
        self._wait = process_tree_run_wait_seconds(self._pid)

    def since(self) -> tuple[float | None, float | None]:
        cpu, wait = process_tree_cpu_seconds(self._pid), process_tree_run_wait_seconds(self._pid)
        return (
            None if cpu is None or self._cpu is None else cpu - self._cpu,
            None if wait is None or self._wait is None else wait - self._wait,
        )


def _per_beacon(seconds: float | None, beacons: int) -> float | None:
    return None if seconds is None or not beacons else round(seconds / beacons * 1e6, 1)


def measure(
    data_dir: Path, database_url: str | None, driver: Driver, sources: int, seconds: int,
    warmup: int, redis_url: str | None, log: LogBackend,
) -> EventsResult:  # fmt: skip
    env = {
        "RECOMMENDER_MODEL": "fake-hashing",
        "RECOMMENDER_ADMIN_TOKEN": TOKEN,
        "RECOMMENDER_EVENT_RATE_PER_SECOND": "0",
    }
    if database_url is not None:
        env["RECOMMENDER_DATABASE_URL"] = database_url
    namespace = f"bench-events:{secrets.token_hex(6)}:"
    if redis_url is not None:
        env["RECOMMENDER_EVENTS_NAMESPACE"] = namespace
    try:
        with run_server(
            data_dir, 1, driver.script_dir, name="events", redis_url=redis_url, access_log=False,
            extra_env=env, cli_serve=True,
            drop_env=() if database_url else ("RECOMMENDER_DATABASE_URL", "RECOMMENDER_STORE_URL"),
        ) as server:  # fmt: skip
            templates = beacon_templates(server.port, demo_slugs(sources))
            if warmup > 0:
                driver.post(server, templates, warmup)
            wait_until_logged(server.port)
            accepted_before, _ = counted(server.port)
            cpu = _Usage(server)
            raw = driver.post(server, templates, seconds)
            cpu_seconds, _ = cpu.since()
            accepted_after, _ = counted(server.port)
            saturated_figures = wait_until_logged(server.port)
            cpu = _Usage(server)
            paced = driver.post(server, templates, seconds, TARGET_EVENTS_PER_SECOND)
            paced_cpu_seconds, paced_wait_seconds = cpu.since()
            paced_accepted, _ = counted(server.port)
            figures = wait_until_logged(server.port)
            accepted, refused = counted(server.port)
    finally:
        if redis_url is not None:
            forget_keys(redis_url, namespace)
    measured_seconds = raw["duration_us"] / 1e6 - START_PAUSE_SECONDS
    paced_seconds = paced["duration_us"] / 1e6 - START_PAUSE_SECONDS
    return EventsResult(
        log=log.value,
        connections=driver.connections,
        click_every=driver.click_every,
        seconds=round(measured_seconds, 2),
        beacons=raw["requests"],
        errors=raw["errors"],
        events_per_second=round((accepted_after - accepted_before) / measured_seconds, 1),
        beacons_per_second=round(raw["requests"] / measured_seconds, 1),
        p50_ms=raw["p50"] / 1000,
        p99_ms=raw["p99"] / 1000,
        max_ms=raw["max"] / 1000,
        paced_connections=driver.paced_connections,
        paced_beacons=paced["requests"],
        paced_errors=paced["errors"],
        paced_events_per_second=round((paced_accepted - accepted_after) / paced_seconds, 1),
        paced_p50_ms=paced["p50"] / 1000,
        paced_p99_ms=paced["p99"] / 1000,
        paced_max_ms=paced["max"] / 1000,
        cpu_us_per_beacon=_per_beacon(cpu_seconds, raw["requests"]),
        paced_cpu_us_per_beacon=_per_beacon(paced_cpu_seconds, paced["requests"]),
        paced_cpu_wait_seconds=None if paced_wait_seconds is None else round(paced_wait_seconds, 2),
        accepted=accepted,
        refused=refused,
        logged=logged_rows(data_dir, database_url),
        log_written=int(figures.get("written", 0)),
        log_dropped=int(figures.get("dropped", 0)),
        paced_log_dropped=int(figures.get("dropped", 0) - saturated_figures.get("dropped", 0)),
        log_failed=int(figures.get("failed", 0)),
    )


def bench_events(
    duration: Annotated[int, typer.Option(min=1, help="Seconds measured.")] = 10,
    warmup: Annotated[int, typer.Option(min=0, help="Unmeasured seconds first.")] = 2,
    connections: Annotated[
        int, typer.Option(min=1, help="Open connections of the saturated run (wrk -c).")
    ] = 16,
    paced_connections: Annotated[
        int,
        typer.Option(
            min=1,
            help="Open connections of the run paced at the target rate: enough that none is "
            "still waiting for an answer when its next beacon is due.",
        ),
    ] = 64,
    log: Annotated[
        LogBackend, typer.Option(help="Where the impression log is kept: postgres or files.")
    ] = LogBackend.postgres,
    server: Annotated[
        str,
        typer.Option(
            help="A PostgreSQL server URL whose user may create databases (--log postgres)."
        ),
    ] = LOCAL_SERVER,
    redis: Annotated[
        str | None,
        typer.Option(help="A Redis URL for the event counters; unset: the worker's memory."),
    ] = None,
    click_every: Annotated[
        int, typer.Option(min=1, help="One box in this many is clicked (a beacon of its own).")
    ] = 20,
    sources: Annotated[int, typer.Option(min=1, help="Articles whose boxes are reported.")] = 100,
    wrk: Annotated[str, typer.Option(help="The wrk executable.")] = "wrk",
    as_json: JsonOption = False,
) -> None:
    """Events/s of one worker taking widget events (saturated), and beacon p50/p99 at the
    target's 5,000 events/s, the log on PostgreSQL."""
    wrk_path = require_wrk(wrk)

    with tempfile.TemporaryDirectory(prefix="bench-events-") as scratch, ExitStack() as stack:
        work_dir = Path(scratch)
        try:
            database_url = None
            if log is LogBackend.postgres:
                database_url = stack.enter_context(throwaway_database(server))
            say("indexing the demo corpus (fake model) ...")
            index_demo_with_fake_model(work_dir / "data")
            say(
                f"posting beacons for {warmup} + {duration} s ({connections} connections), then "
                f"{duration} s at {TARGET_EVENTS_PER_SECOND:.0f} events/s "
                f"({paced_connections} connections) ..."
            )
            driver = Driver(wrk_path, connections, paced_connections, click_every, work_dir)
            result = measure(
                work_dir / "data", database_url, driver, sources, duration, warmup, redis, log
            )
        except BenchError as exc:
            raise fail(str(exc)) from None
    missed = verdict(result)
    outcome = "PASS" if not missed else "FAIL: " + "; ".join(missed)
    target = (
        f"target: >= {TARGET_EVENTS_PER_SECOND:.0f} events/s with p99 <= {TARGET_P99_MS:g} ms, "
        f"every accepted event logged: {outcome}"
    )
    if as_json:
        report = {**asdict(result), "passed": not missed, "target": target}
        typer.echo(orjson.dumps({**report, "cpus": os.cpu_count()}).decode())
        return
    paced_beacons_per_second = result.paced_beacons / result.seconds
    rows = [
        [
            result.log, f"saturated ({result.connections} connections)",
            f"{result.events_per_second:.0f}", f"{result.beacons_per_second:.0f}",
            f"{result.p50_ms:.2f}", f"{result.p99_ms:.2f}", f"{result.max_ms:.1f}",
        ],
        [
            result.log, f"paced ({result.paced_connections} connections)",
            f"{result.paced_events_per_second:.0f}", f"{paced_beacons_per_second:.0f}",
            f"{result.paced_p50_ms:.2f}", f"{result.paced_p99_ms:.2f}",
            f"{result.paced_max_ms:.1f}",
        ],
    ]  # fmt: skip
    header = ["log", "run", "events/s", "beacons/s", "p50 ms", "p99 ms", "max ms"]
    typer.echo(format_rows(header, rows))
    refused = sum(result.refused.values())
    typer.echo(
        f"{result.accepted} events accepted, {refused} refused; the log holds {result.logged} "
        f"(written {result.log_written}, dropped {result.log_dropped}, "
        f"{result.paced_log_dropped} of them at {TARGET_EVENTS_PER_SECOND:.0f} events/s, "
        f"failed writes {result.log_failed}); {result.errors + result.paced_errors} beacons failed"
    )
    if result.cpu_us_per_beacon is not None and result.paced_cpu_us_per_beacon is not None:
        typer.echo(
            f"worker CPU per beacon: {result.cpu_us_per_beacon:.0f} µs saturated, "
            f"{result.paced_cpu_us_per_beacon:.0f} µs paced; paced, its threads waited "
            f"{result.paced_cpu_wait_seconds} s of {result.seconds:g} s for a CPU"
        )
    typer.echo(target)
