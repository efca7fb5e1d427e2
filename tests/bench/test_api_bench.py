"""`make bench-api`: the ceiling app, the driver (real servers, a stand-in for wrk), the report.

Nothing here is timed: the stand-in for wrk sends each path once and reports made-up numbers,
which is enough to check that the servers, the cache warm-up, the ceiling's bytes and the
cache counters work together, and how results are summarised.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from bench.api_bench import CEILING_PATH, format_table, run_benchmark, summarise, target_lines
from bench.ceiling_app import create_bench_app
from bench.process_memory import serving_processes
from bench.report import BenchError
from bench.server_process import (
    cache_counters,
    every_worker_metrics,
    http_get,
    process_tree_cpu_seconds,
    run_server,
)
from bench.wrk_load import (
    START_PAUSE_SECONDS,
    WRK_INSTALL_HINT,
    Load,
    Sample,
    parse_wrk_output,
    wrk_script,
)
from console.main import app
from recommender.encoding.encoder_protocol import FAKE_MODEL
from recommender.settings import Settings
from tests.support.helpers import build_fake_index, synthetic_records

#: Sends every path of the script's paths file once, then prints a result line.
FAKE_WRK = """#!{python}
import http.client, re, sys
script = open(sys.argv[sys.argv.index("-s") + 1]).read()
paths = open(re.search(r"io.lines\\(\\[==\\[(.*?)\\]==\\]", script).group(1)).read().split()
port = int(sys.argv[-1].rsplit(":", 1)[1])
for path in paths:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    assert connection.getresponse().read()
    connection.close()
print('BENCH-RESULT {{"requests":%d,"duration_us":%d,"p50":1000,"p90":1500,"p99":2000,'
      '"max":3000,"errors":0}}' % (10 * len(paths), 1_250_000))
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    built, _ = build_fake_index(tmp_path / "data", redis_url=None)
    return built


def test_the_ceiling_returns_the_bytes_of_the_first_articles_related_list(
    settings: Settings,
) -> None:
    with TestClient(create_bench_app(settings)) as client:
        ceiling = client.get(CEILING_PATH)
        related = client.get("/v1/articles/volcano-0/related")  # row 0 of the fake index
        assert ceiling.status_code == 200 and ceiling.content == related.content
        assert ceiling.headers["content-type"] == "application/json"


def test_the_service_itself_has_no_ceiling(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get(CEILING_PATH).status_code == 404


def test_the_driver_measures_every_variant_against_real_servers(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrk = tmp_path / "wrk"
    wrk.write_text(FAKE_WRK.format(python=sys.executable))
    wrk.chmod(0o755)
    monkeypatch.setenv("RECOMMENDER_MODEL", FAKE_MODEL)  # for the servers and the driver
    work = tmp_path / "work"
    work.mkdir()
    results, articles = run_benchmark(
        data_dir=settings.data_dir,
        variants=["ceiling", "cached", "uncached"],
        load=Load(str(wrk), seconds=2, warmup=1, threads=1, connections=4, script_dir=work),
        rounds=2,
        workers=1,
        cached_slugs=3,
        redis_url=None,
        access_log=False,
        say=lambda _: None,
    )
    assert articles == 18
    by_name = {r.variant: r for r in results}
    assert list(by_name) == ["ceiling", "cached", "uncached"]
    # the stand-in sent 1 path for the ceiling, 3 cached, 18 uncached, 10 "requests" each
    seconds = 1.25 - START_PAUSE_SECONDS
    assert by_name["cached"].requests_per_second == pytest.approx(30 / seconds, rel=1e-3)
    assert by_name["cached"].ratio_to_ceiling == pytest.approx(3.0)
    assert by_name["cached"].cache_hit_rate == 1.0
    assert by_name["uncached"].cache_hit_rate == 0.0  # a one-entry cache over 18 slugs
    assert by_name["ceiling"].cache_hit_rate is None
    assert all(r.rounds == 2 and r.errors == 0 and r.p99_over_p50 == 2.0 for r in results)


def sample(requests: int, p50: float = 1.0, cpu: float | None = 1.0, hits: int = 0) -> Sample:
    return Sample(
        requests=requests,
        seconds=1.0,
        p50_ms=p50,
        p90_ms=p50,
        p99_ms=2 * p50,
        max_ms=3 * p50,
        errors=0,
        hits=hits,
        misses=requests - hits,
        server_cpu_seconds=cpu,
    )


def test_ratios_are_taken_round_by_round() -> None:
    results = summarise(
        {
            # a noisy neighbour halved round 2 for everyone: the ratios do not move
            "ceiling": [sample(1000, cpu=0.1), sample(500, cpu=0.05), sample(1000, cpu=0.1)],
            "cached": [
                sample(800, cpu=0.1, hits=800),
                sample(400, cpu=0.05, hits=400),
                sample(800, cpu=0.1, hits=800),
            ],
        },
    )
    ceiling, cached = results
    assert ceiling.ratio_to_ceiling == 1.0
    assert cached.requests_per_second == 800.0 and cached.ratio_to_ceiling == 0.8
    assert cached.server_cpu_us == 125.0 and cached.cpu_ratio_to_ceiling == 0.8
    assert cached.cache_hit_rate == 1.0
    table = format_table(results)
    assert table.splitlines()[0].split()[:3] == ["variant", "req/s", "p50"]
    assert "0.80" in table.splitlines()[2]
    assert "cached >= 0.7 x ceiling: met (0.80)" in target_lines(results)


def test_unknown_cpu_and_no_lookups_are_reported_as_unknown() -> None:
    (result,) = summarise({"cached": [sample(0, cpu=None)]})
    assert result.server_cpu_us is None and result.cache_hit_rate is None
    assert result.ratio_to_ceiling is None
    assert "-" in format_table([result]).splitlines()[1]


def test_the_wrk_script_reads_its_paths_and_pauses_once_per_connection(tmp_path: Path) -> None:
    script = wrk_script(tmp_path / "paths.txt", threads=2, connections=64)
    assert f"io.lines([==[{tmp_path / 'paths.txt'}]==])" in script
    assert "if first_requests < 32 then" in script
    assert re.search(r"return 250\b", script)
    assert "%(" not in script


def test_wrk_output_must_carry_a_result_line() -> None:
    line = '{"requests":1,"duration_us":2,"p50":3,"p90":4,"p99":5,"max":6,"errors":0}'
    assert parse_wrk_output(f"Running 10s test\nBENCH-RESULT {line}\n")["p99"] == 5
    with pytest.raises(Exception, match="no result"):
        parse_wrk_output("unable to connect to 127.0.0.1:1\n")


def test_cpu_time_of_a_process_tree() -> None:
    assert (process_tree_cpu_seconds(os.getpid()) or 0) > 0
    assert process_tree_cpu_seconds(2**22 + 12345) is None


def test_without_wrk_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "api", "--wrk", str(tmp_path / "no-wrk")])
    assert result.exit_code == 2
    assert WRK_INSTALL_HINT in result.output
    assert "apt-get install -y wrk" in WRK_INSTALL_HINT


def test_unknown_variants_are_refused() -> None:
    result = CliRunner().invoke(app, ["bench", "api", "--variant", "warm"])
    assert result.exit_code == 2 and "unknown variant" in result.output


def test_the_cache_counters_add_up_every_worker(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker counts its own lookups and any one answers GET /metrics: the read hears
    from both (it failed the archive bench once when both reads reached the idle worker)."""
    monkeypatch.setenv("RECOMMENDER_MODEL", FAKE_MODEL)
    slugs = [record["slug"] for record in synthetic_records()]
    with run_server(
        settings.data_dir, 2, tmp_path, name="two", redis_url=None, access_log=False,
        cli_serve=True,
    ) as server:  # fmt: skip
        assert cache_counters(server) == (0.0, 0.0)
        for slug in slugs:  # a new connection each: the two workers share them
            assert http_get(server.port, f"/v1/articles/{slug}/related")[0] == 200
        assert cache_counters(server) == (0.0, len(slugs))
        assert http_get(server.port, f"/v1/articles/{slugs[0]}/related")[0] == 200
        hits, misses = cache_counters(server)
        assert misses + hits == len(slugs) + 1 and hits <= 1  # a hit where it was cached


def test_a_server_is_ready_once_every_worker_answers(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOMMENDER_MODEL", FAKE_MODEL)
    with run_server(
        settings.data_dir, 2, tmp_path, name="two", redis_url=None, access_log=False
    ) as server:
        assert server.worker_pids == serving_processes(server.process.pid, 2)
        assert len(server.worker_pids) == 2
        with pytest.raises(BenchError, match=r"2 of 3 workers answered GET /metrics in 0.2 s"):
            every_worker_metrics(server.port, 3, patience_s=0.2)
