"""`make soak` (`recommender bench soak`): end to end for a few seconds, and its verdict.

The end-to-end run is the real command with real wrk, a real `recommender serve` and a
private redis-server, over the synthetic corpus with the fake encoder, at 4 connections for
8 seconds, with the hostile mix (random exclude lists, a live change a second): it checks that
the pieces work together and what the command prints, not speed.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.server_process import process_tree
from bench.soak import (
    EXTRA_SLUG,
    HOSTILE_SHARE,
    SoakResult,
    format_result,
    judge,
    redis_used_memory,
    rss_bytes,
    soak_paths,
)
from console.main import app as cli
from recommender.encoding.encoder_protocol import FAKE_MODEL
from tests.support.helpers import REPO, synthetic_records, write_jsonl
from tests.support.redis_server import RedisProcess, free_port


@pytest.mark.redis
def test_a_short_soak_runs_end_to_end_and_reports_every_number(
    tmp_path: Path, redis_process: RedisProcess
) -> None:
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records())
    command = [
        sys.executable, "-m", "console", "bench", "soak", "--source", str(feed),
        "--duration", "8", "--warmup", "1", "--connections", "4",
        "--redis-url", redis_process.url, "--json",
        # 8 s measure warm-up, not leaks: memory growth is judged by `make soak`'s 5 minutes.
        "--max-memory-growth", "10",
    ]  # fmt: skip
    env = {**os.environ, "RECOMMENDER_MODEL": FAKE_MODEL}
    completed = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240
    )
    assert completed.stdout, completed.stderr
    result = json.loads(completed.stdout)
    assert set(result) == {field.name for field in fields(SoakResult)}
    assert result["problems"] == [] and completed.returncode == 0, completed.stderr
    assert result["articles"] == 18 and result["connections"] == 4
    assert result["requests"] > 0 and result["errors"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["rss_start_mb"] > 0 and result["rss_end_mb"] > 0
    assert result["version_before"] != result["version_after"]  # the midway reindex swapped
    assert result["swap_seconds"] is not None and result["cache"] in {"ok", "degraded"}
    assert 0 <= result["cache_hit_rate"] <= 1
    assert result["live_changes"] >= 4 and result["live_change_errors"] == 0
    assert abs(result["hostile_share"] - HOSTILE_SHARE) < 0.01
    assert result["redis_start_mb"] > 0 and result["redis_end_mb"] > 0
    assert result["ctr_before"] == result["ctr_after"] == [3, 1]


def test_without_redis_the_soak_says_how_to_get_one() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(cli, ["bench", "soak", "--redis-url", url, "--wrk", "/bin/true"])
    assert result.exit_code == 2
    assert f"no Redis answers at {url}" in result.output and "--redis-url" in result.output


def test_the_verdict_names_every_problem() -> None:
    assert judge(0, 1.05, "v1", "v2", max_growth=0.10) == []
    problems = judge(
        3, 1.25, "v1", "v1", max_growth=0.10, redis_ratio=1.5, live_errors=2,
        ctr=([3, 1], [2, 1]),
    )  # fmt: skip
    assert problems == [
        "3 requests failed",
        "memory grew by 25.0% (at most 10% allowed)",
        "Redis memory grew by 50.0% (at most 10% allowed)",
        "2 live changes failed",
        "the CTR counters changed from [3, 1] to [2, 1]",
        "the server did not swap: it still serves v1",
    ]


def test_the_report_ends_with_the_verdict() -> None:
    result = SoakResult(
        articles=18, seconds=8.0, connections=4, workers=1, requests=1000,
        requests_per_second=125.0, errors=2, p50_ms=1.0, p99_ms=5.0, max_ms=9.0,
        rss_start_mb=100.0, rss_end_mb=101.0, rss_ratio=1.01, version_before="a",
        version_after="b", reindex_seconds=2.0, swap_seconds=2.5, cache="ok",
        cache_hit_rate=0.9, hostile_share=0.05, live_changes=8, live_change_errors=0,
        redis_start_mb=1.0, redis_end_mb=1.05, redis_ratio=1.05, ctr_before=[3, 1],
        ctr_after=[3, 1], problems=["2 requests failed"],
    )  # fmt: skip
    lines = format_result(result).splitlines()
    assert lines[0].split() == ["soak", "result"]
    assert any(line.split()[:2] == ["errors", "2"] for line in lines)
    assert lines[-1] == "FAIL: 2 requests failed"


def test_paths_cover_every_article_plainly_and_filtered() -> None:
    paths = soak_paths(["a", "b"])
    assert paths == [
        "/v1/articles/a/related",
        "/v1/articles/a/related?limit=3&exclude=b",
        "/v1/articles/b/related",
        "/v1/articles/b/related?limit=3&exclude=a",
    ]
    assert EXTRA_SLUG not in "".join(paths)


def test_one_path_in_twenty_excludes_a_random_valid_list(rng: random.Random) -> None:
    slugs = [f"article-{n}" for n in range(50)]
    paths = soak_paths(slugs, rng)
    hostile = [path for path in paths if "?exclude=" in path]
    assert len(paths) == 105 and len(hostile) == 5  # 100 plain and filtered lists, 5 % more
    assert [path for path in paths if path not in hostile] == soak_paths(slugs)
    for path in hostile:
        source = path.split("/")[3]
        excluded = [part.removeprefix("exclude=") for part in path.split("?")[1].split("&")]
        assert 1 <= len(excluded) <= 5 and set(excluded) <= set(slugs) - {source}, path
    assert soak_paths(slugs, random.Random(7)) == soak_paths(slugs, random.Random(7))  # seeded


@pytest.mark.redis
def test_redis_memory_is_read_from_info(redis_url: str) -> None:
    assert redis_used_memory(redis_url) > 0


def test_memory_is_summed_over_a_process_and_its_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in process_tree(os.getpid())
        assert rss_bytes(os.getpid()) > rss_bytes(child.pid) > 0
    finally:
        child.kill()
        child.wait()
    assert rss_bytes(child.pid) == 0
