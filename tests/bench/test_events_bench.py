"""`recommender bench events`: its verdict, and a short end-to-end run (real wrk, a real
`recommender serve`, a throwaway database on the machine's PostgreSQL) whose figures must agree
with one another; it checks what the command prints, not speed."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from bench.events_bench import EventsResult, verdict
from tests.support.helpers import REPO
from tests.support.postgres_server import ADMIN_URL

MET = EventsResult(
    log="postgres", connections=16, click_every=20, seconds=10.0, beacons=20_000, errors=0,
    events_per_second=5000.0, beacons_per_second=2000.0, p50_ms=3.0, p99_ms=40.0, max_ms=60.0,
    paced_connections=64, paced_beacons=10_400, paced_errors=0, paced_events_per_second=4900.0,
    paced_p50_ms=2.0, paced_p99_ms=20.0, paced_max_ms=30.0, cpu_us_per_beacon=300.0,
    paced_cpu_us_per_beacon=300.0, paced_cpu_wait_seconds=0.5, accepted=60_000,
    refused={"missing_token": 0, "duplicate": 0}, logged=60_000,
    log_written=60_000, log_dropped=0, paced_log_dropped=0, log_failed=0,
)  # fmt: skip


def test_a_run_at_the_targets_passes() -> None:
    assert verdict(MET) == []


def test_the_saturated_runs_latency_and_log_drops_are_reported_not_judged() -> None:
    """Saturated, latency is connections / throughput (Little's law), and the log writer may
    fall behind: the target's p99 and complete log are the paced run's, at the target's rate."""
    saturated = {"p99_ms": 500.0, "max_ms": 900.0, "log_dropped": 40, "logged": 59_960}
    assert verdict(dataclasses.replace(MET, **saturated)) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "missed"),
    [
        ({"events_per_second": 4999.9}, "events/s 4999.9 < 5000"),
        ({"paced_p99_ms": 20.01}, "p99 at 5000 events/s 20.01 ms > 20 ms"),
        ({"paced_events_per_second": 4899.9}, "paced at 4899.9 events/s, not 5000"),
        ({"errors": 3}, "3 beacons failed"),
        ({"paced_errors": 2}, "2 beacons failed"),
        ({"errors": 3, "paced_errors": 2}, "5 beacons failed"),
        ({"refused": {"missing_token": 0, "duplicate": 2}}, "2 events refused"),
        (
            {"log_dropped": 9, "paced_log_dropped": 7, "logged": 59_991},
            "7 events dropped from the log at 5000 events/s",
        ),
        ({"logged": 59_999}, "the log holds 59999 events and dropped 0, 60000 were accepted"),
        ({"logged": 60_001}, "the log holds 60001 events and dropped 0, 60000 were accepted"),
    ],
)
def test_each_shortfall_fails_the_run_and_says_which(
    change: dict[str, object], missed: str
) -> None:
    assert verdict(dataclasses.replace(MET, **change)) == [missed]  # type: ignore[arg-type]


@pytest.mark.parametrize("log", [pytest.param("postgres", marks=pytest.mark.postgres), "files"])
def test_a_short_run_logs_every_accepted_event_once(log: str) -> None:
    command = [
        sys.executable, "-m", "console", "bench", "events", "--log", log, "--server", ADMIN_URL,
        "--duration", "2", "--warmup", "1", "--connections", "4", "--sources", "20",
        "--click-every", "3", "--json",
    ]  # fmt: skip
    # A queue no burst fills here: whatever the machine's speed, every accepted event is logged.
    env = {**os.environ, "RECOMMENDER_EVENTS_QUEUE_SIZE": "1000000"}
    completed = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=240, env=env
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["log"] == log
    assert report["errors"] == 0 and report["beacons"] > 0
    assert report["paced_errors"] == 0 and report["paced_beacons"] > 0
    assert report["paced_connections"] == 64
    assert report["cpu_us_per_beacon"] > 0 and report["paced_cpu_us_per_beacon"] > 0
    assert report["paced_cpu_wait_seconds"] >= 0
    # Paced: never faster than the target's rate (whether it keeps up is the verdict's business).
    assert 0 < report["paced_events_per_second"] <= 5000 * 1.05
    # Every box has an id of its own and a valid token: nothing refused, all accepted and logged.
    assert set(report["refused"].values()) == {0}
    assert report["accepted"] > 0 and report["events_per_second"] > 0
    assert report["click_every"] == 3
    assert report["logged"] == report["log_written"] == report["accepted"]
    assert report["log_dropped"] == 0 and report["log_failed"] == 0
    # The verdict follows from the figures (whether the target is met is the benchmark's business).
    result = EventsResult(
        **{k: v for k, v in report.items() if k not in ("passed", "target", "cpus")}
    )
    assert report["passed"] == (verdict(result) == [])
    assert report["target"].startswith("target: >= 5000 events/s with p99 <= 20 ms")
    assert report["target"].endswith("PASS" if report["passed"] else "; ".join(verdict(result)))
