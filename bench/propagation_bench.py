"""`recommender bench propagation`: how long a change accepted on one host takes to apply on
another that shares its PostgreSQL database.

Two `recommender serve` hosts, each with a data directory of its own (the demo corpus indexed
with the deterministic fake model), share a throwaway database made on `--server` (dropped
afterwards). `--changes` times: a new article is `PUT` on host A and, from the moment A answers
2xx, host B is asked for it every `--probe-ms` until it knows it. The delays' p50/p99/max are
printed. Target (issue 15): every change applies on every host within 1 s.
"""

from __future__ import annotations

import http.client
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import orjson
import typer

from api.cli.cli_toolkit import JsonOption, fail
from bench.report import BenchError, format_rows, say
from bench.server_process import index_demo_with_fake_model, run_server
from bench.throwaway_database import LOCAL_SERVER, throwaway_database

TARGET_MS = 1000.0
TOKEN = "bench-propagation-token"
EXAMPLES = (
    "Examples:\n\n"
    "  recommender bench propagation\n\n"
    "  recommender bench propagation --server postgresql://postgres@db:5432/postgres "
    "--changes 500 --json"
)


@dataclass(frozen=True)
class PropagationResult:
    changes: int
    workers: int
    poll_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    put_p50_ms: float


def _request(port: int, method: str, path: str, body: bytes | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def measure(a: int, b: int, changes: int, probe_s: float) -> tuple[list[float], list[float]]:
    """Delays (ms) from A's 2xx to B knowing each change, and A's answer times (ms)."""
    delays, puts = [], []
    for n in range(changes):
        slug = f"propagation-{n}"
        body = orjson.dumps({"title": f"Propagation probe {n}", "body": f"probe number {n}"})
        started = time.perf_counter()
        status = _request(a, "PUT", f"/v1/articles/{slug}", body)
        accepted = time.perf_counter()
        if status != 200:
            raise BenchError(f"host A answered {status} to a PUT")
        puts.append((accepted - started) * 1000)
        while _request(b, "GET", f"/v1/articles/{slug}") != 200:
            if time.perf_counter() - accepted > 30:
                raise BenchError(f"host B never learned of {slug}")
            time.sleep(probe_s)
        delays.append((time.perf_counter() - accepted) * 1000)
    return delays, puts


def bench_propagation(
    server: Annotated[
        str,
        typer.Option(help="A PostgreSQL server URL whose user may create databases."),
    ] = LOCAL_SERVER,
    changes: Annotated[int, typer.Option(min=1, help="Changes made on host A.")] = 200,
    workers: Annotated[int, typer.Option(min=1, help="Workers of each host.")] = 1,
    poll_ms: Annotated[
        float, typer.Option(min=10, help="RECOMMENDER_DATABASE_POLL_SECONDS of the hosts, in ms.")
    ] = 200,
    probe_ms: Annotated[float, typer.Option(min=1, help="How often B is asked.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """p50/p99 of how long a change on one host takes to apply on another."""

    with tempfile.TemporaryDirectory(prefix="bench-propagation-") as scratch, ExitStack() as stack:
        work = Path(scratch)
        try:
            url = stack.enter_context(throwaway_database(server))
            env = {
                "RECOMMENDER_MODEL": "fake-hashing",
                "RECOMMENDER_ADMIN_TOKEN": TOKEN,
                "RECOMMENDER_DATABASE_URL": url,
                "RECOMMENDER_DATABASE_POLL_SECONDS": str(poll_ms / 1000),
            }
            ports = []
            for name in ("a", "b"):
                say(f"host {name}: indexing the demo corpus (fake model) and starting ...")
                index_demo_with_fake_model(work / name)
                started = stack.enter_context(
                    run_server(
                        work / name, workers, work, name=name, redis_url=None,
                        access_log=False, extra_env=env, cli_serve=True,
                    )
                )  # fmt: skip
                ports.append(started.port)
            say(f"{changes} changes on A, each awaited on B ...")
            delays, puts = measure(ports[0], ports[1], changes, probe_ms / 1000)
        except BenchError as exc:
            raise fail(str(exc)) from None
    ordered = sorted(delays)
    result = PropagationResult(
        changes=changes,
        workers=workers,
        poll_ms=poll_ms,
        p50_ms=round(statistics.median(ordered), 1),
        p99_ms=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        max_ms=round(ordered[-1], 1),
        put_p50_ms=round(statistics.median(puts), 1),
    )
    verdict = "met" if result.max_ms <= TARGET_MS else "MISSED"
    target = f"target: every change on B within {TARGET_MS:g} ms: max {result.max_ms:g} ({verdict})"
    if as_json:
        typer.echo(
            orjson.dumps({**asdict(result), "target": target, "cpus": os.cpu_count()}).decode()
        )
        return
    typer.echo(
        format_rows(
            ["measure", "ms"],
            [
                ["propagation p50", f"{result.p50_ms:.1f}"],
                ["propagation p99", f"{result.p99_ms:.1f}"],
                ["propagation max", f"{result.max_ms:.1f}"],
                ["PUT answered (p50)", f"{result.put_p50_ms:.1f}"],
            ],
        )
    )
    typer.echo(f"{changes} changes; {workers} worker(s) per host; poll every {poll_ms:g} ms")
    typer.echo(target)
