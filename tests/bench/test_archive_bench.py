"""`recommender bench archive`: the archive it copies, the memory and disk it reads, its verdicts,
and one small run end to end (real reindex children, real `recommender serve`, real wrk).

Nothing asserts a speed: the run's figures are checked for shape and consistency, and the
verdicts on fixed figures.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from bench.archive_bench import (
    TARGETS,
    Figures,
    cache_names,
    disk_usage,
    stage_rows,
    verdicts,
)
from bench.archive_catalog import write_catalog, write_nightly
from bench.process_memory import memory_rollup, run_to_end, serving_processes
from bench.report import BenchError
from console.main import app
from tests.support.helpers import REPO, SHARED, require_shared

SENTENCES = [f"Sentence number {n} of the story." for n in range(6)]
RECORDS: list[dict[str, Any]] = [
    {"slug": "Long_Story", "title": "A long story", "body": " ".join(SENTENCES),
     "url": "https://news.example/long", "labels": {"topic": "x"}},
    {"slug": "short-story", "title": "A short story", "body": "Only one sentence here.",
     "published_at": "2020-05-01T10:00:00Z"},
    {"slug": "no-body", "title": "A title alone"},
]  # fmt: skip


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.jsonl"
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in RECORDS))
    return path


def read_lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_the_archive_is_the_real_records_then_changed_copies(source: Path, tmp_path: Path) -> None:
    catalog = write_catalog([source], tmp_path / "archive.jsonl", 7, random.Random(1), sample=3)
    written = read_lines(catalog.path)
    assert catalog.articles == len(written) == 7 and catalog.base_texts == 2  # no body: left out
    slugs = [article["slug"] for article in written]
    assert slugs == ["long-story", "short-story", "long-story--c1", "short-story--c1",
                     "long-story--c2", "short-story--c2", "long-story--c3"]  # fmt: skip
    assert written[0]["body"] == RECORDS[0]["body"] and "labels" not in written[0]
    assert written[1]["published_at"] == "2020-05-01T10:00:00Z"  # the real date kept
    for copy in (written[2], written[4], written[6]):
        sentences = copy["body"].split(" Sentence")
        assert len(sentences) == len(SENTENCES) - 1  # one dropped
        assert copy["body"] != RECORDS[0]["body"]
        assert copy["url"].startswith("https://news.example/long#c")
    assert written[3]["body"] == "Only one sentence here."  # nothing to drop or swap
    assert all("2000-01-01" <= a["published_at"] < "2026-11-01" for a in written)
    assert len(set(catalog.slugs)) == 3 and set(catalog.slugs) <= set(slugs)


def test_an_archive_source_without_articles_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(orjson.dumps(RECORDS[2]) + b"\n")
    with pytest.raises(BenchError, match="no article with a title and a body"):
        write_catalog([empty], tmp_path / "archive.jsonl", 5, random.Random(1), sample=1)


def test_the_nightly_feed_edits_a_share_and_adds_new_articles(source: Path, tmp_path: Path) -> None:
    catalog = write_catalog([source], tmp_path / "archive.jsonl", 40, random.Random(2), sample=5)
    change = write_nightly(catalog, tmp_path / "nightly.jsonl", 0.25, random.Random(3))
    assert (change.edited, change.added, change.changed) == (9, 1, 10)
    before, after = catalog.path.read_bytes().splitlines(), change.path.read_bytes().splitlines()
    assert len(after) == 41
    edited = [row for row in range(40) if before[row] != after[row]]
    assert len(edited) == 9
    for row in edited:
        revised = orjson.loads(after[row])
        assert revised["body"].startswith(f"This article was revised (revision 1.{row}).")
        assert revised["slug"] == orjson.loads(before[row])["slug"]
    new = orjson.loads(after[40])
    assert new["slug"] == "long-story--new1" and new["body"].startswith("A follow-up (1.1).")

    # the next night starts from this one's feed; its new articles have slugs of their own
    tonight = dataclasses.replace(catalog, path=change.path, articles=41)
    second = write_nightly(tonight, tmp_path / "night-2.jsonl", 0.25, random.Random(4), night=2)
    slugs = [article["slug"] for article in read_lines(second.path)]
    assert len(slugs) == len(set(slugs)) == 41 + second.added
    assert slugs[-1] == "long-story--new2"

    unchanged = write_nightly(catalog, tmp_path / "same.jsonl", 0.0, random.Random(3))
    assert unchanged.changed == 0 and unchanged.path.read_bytes() == catalog.path.read_bytes()


def test_the_peak_memory_is_each_childs_own(tmp_path: Path) -> None:
    def run(code: str) -> tuple[int, int]:
        finished = run_to_end([sys.executable, "-c", code], env=os.environ,
                              stdout=tmp_path / "out", stderr=tmp_path / "err")  # fmt: skip
        assert finished.seconds > 0 and finished.cpu_seconds > 0
        return finished.returncode, finished.peak_bytes

    # each child runs long enough to be sampled; the first holds 300 MB
    code, big = run("import sys, time; block = b'x' * 300_000_000; time.sleep(1); sys.exit(3)")
    assert code == 3 and big >= 300_000_000
    code, small = run("import time; time.sleep(1)")
    # its own memory alone: not the larger child's before it, nor this (pytest) process's
    own = memory_rollup(os.getpid()).rss
    assert code == 0 and 0 < small < min(100_000_000, own)


def test_the_memory_of_a_running_process_adds_up() -> None:
    memory = memory_rollup(os.getpid())
    assert 0 < memory.private <= memory.rss and 0 <= memory.shared <= memory.rss
    assert memory.private + memory.shared == memory.rss
    assert memory.private <= memory.pss <= memory.rss
    with pytest.raises(BenchError, match="cannot read the memory"):
        memory_rollup(2**22 + 12345)


def test_one_worker_serves_in_the_server_process_itself_and_more_in_spawned_children() -> None:
    """`recommender serve --workers 1` runs uvicorn in its own process: the bench measures that
    one (it once found "0 worker processes of the server, not 1" and stopped)."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as server:
        try:
            assert serving_processes(server.pid, 1) == [server.pid]
            assert serving_processes(server.pid, 2) == []  # no spawned workers: none counted
        finally:
            server.kill()


def test_the_data_directory_counts_each_file_once_and_sorts_caches(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for version in ("v1", "v2"):
        (data / "versions" / version).mkdir(parents=True)
    (data / "versions" / "v1" / "vectors.npy").write_bytes(b"x" * 1_000_000)
    os.link(data / "versions" / "v1" / "vectors.npy", data / "versions" / "v2" / "vectors.npy")
    (data / "embeddings.sqlite3").write_bytes(b"x" * 200_000)
    (data / "embeddings.sqlite3-wal").write_bytes(b"x" * 100_000)
    (data / "fetch-cache").mkdir()
    (data / "fetch-cache" / "page").write_bytes(b"x" * 50_000)
    (data / "CURRENT").write_text("v2")
    names = cache_names(data)
    # (the suite keeps ONNX exports outside data directories: RECOMMENDER_ENCODER_CACHE_DIR)
    assert {"embeddings.sqlite3", "term_counts.sqlite3", "fetch-cache"} <= names
    usage = disk_usage(data, names)
    assert usage.version_count == 2
    assert 1_000_000 <= usage.versions < 1_100_000  # the hard link is not counted twice
    assert 350_000 <= usage.caches < 400_000
    assert 0 < usage.other < 50_000  # CURRENT
    assert usage.total == usage.versions + usage.caches + usage.other == sum(usage.entries.values())


def figures(**changed: float) -> Figures:
    """Figures at exactly every limit."""
    limits = {target.field: target.limit for target in TARGETS}
    return Figures(**{**limits, **changed})


def test_verdicts_at_the_target_size_check_the_figures_as_measured() -> None:
    checked = verdicts(figures(), 1_000_000)
    assert [v.verdict for v in checked] == ["PASS"] * len(TARGETS)  # every limit is inclusive
    assert all(v.basis == "as measured at 1,000,000" for v in checked)
    failed = verdicts(figures(full_peak_gb=8.01, ratio_to_ceiling=0.49, cold_start_s=12), 2_000_000)
    by_name = {v.target: v.verdict for v in failed}
    assert by_name["full reindex peak memory, GB"] == "FAIL"
    assert by_name["uncached related / bare FastAPI"] == "FAIL"
    assert by_name["serving cold start, s"] == "FAIL"
    assert by_name["full reindex wall, min"] == "PASS"


def test_verdicts_below_the_target_size_extrapolate_what_grows_with_the_catalog() -> None:
    # 100 k articles: a 3-minute reindex is 30 minutes at 1 M, a 1.4 GB directory 14 GB
    checked = verdicts(
        figures(full_minutes=3.0, data_dir_gb=1.4, full_peak_gb=4.5, worker_private_mb=760.0),
        100_000,
    )
    by_name = {v.target: v for v in checked}
    wall = by_name["full reindex wall, min"]
    assert (wall.measured, wall.compared, wall.verdict) == (3.0, 30.0, "FAIL")
    assert wall.basis == "x 10.0: linear to 1,000,000"
    disk = by_name["data directory, GB"]
    assert (disk.compared, disk.verdict) == (14.0, "PASS")
    peak = by_name["full reindex peak memory, GB"]  # checked as measured: necessary only
    assert (peak.compared, peak.verdict, peak.basis) == (4.5, "PASS", "as measured at 100,000")
    assert by_name["per-worker private memory, MB"].verdict == "FAIL"


def test_stage_figures_are_shown_where_the_reindex_reports_them() -> None:
    full = {
        "stages": [
            {"stage": "read", "seconds": 1.5, "peak_memory_mb": 120.0},
            {"stage": "fit", "seconds": 12.25, "peak_memory_mb": 900.4},
        ]
    }
    nightly = {"stages": [{"stage": "fit", "seconds": 0.5, "peak_memory_mb": 300.0}]}
    assert stage_rows(full, nightly) == [
        ["read", "1.50", "120", "-", "-"],
        ["fit", "12.25", "900", "0.50", "300"],
    ]  # fmt: skip
    (unavailable,) = stage_rows({"stages": None}, nightly)
    assert unavailable[0].startswith("stage figures unavailable")


def test_without_the_shared_data_the_command_says_where_it_looked(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "archive", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no such feed" in result.output and "pass --data DIR" in result.output


@pytest.mark.timing
def test_a_small_archive_run_reports_every_figure(tmp_path: Path) -> None:
    require_shared(SHARED / "data" / "allsides-abp-37k" / "articles.jsonl.gz")
    work = tmp_path / "work"
    command = [sys.executable, "-m", "console", "bench", "archive", "--articles", "400",
               "--nights", "2", "--duration", "2", "--warmup", "1", "--connections", "16",
               "--work-dir",
               str(work), "--json"]  # fmt: skip
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    report = orjson.loads(completed.stdout)

    full, nightly = report["full_reindex"], report["nightly_reindex"]
    assert report["articles"] == full["indexed"] == 400
    assert 0 < full["embedded"] <= 400 and full["seconds"] > 0 and full["peak_memory_mb"] > 0
    # 1 % of 400: 3 edited and 1 new, and the nightly run embedded exactly those
    assert nightly == report["nights"][0] and nightly["night"] == 1
    assert (nightly["edited"], nightly["added"]) == (3, 1)
    assert nightly["embedded"] == 4 and nightly["indexed"] == 401
    assert nightly["ratio_to_full"] == pytest.approx(nightly["seconds"] / full["seconds"], abs=2e-3)
    assert full["cpu_seconds"] > 0 and nightly["cpu_seconds"] > 0
    # the second night changed 1 % of 401 on top of the first
    second = report["nights"][1]
    assert (second["night"], second["embedded"], second["indexed"]) == (2, 4, 402)
    for run in (full, *report["nights"]):
        assert run["stages"] is None or all(
            set(item) >= {"stage", "seconds", "peak_memory_mb"} for item in run["stages"]
        )

    disk = report["data_dir"]
    assert report["data_dir_bytes"] == disk["total"] > 0
    assert disk["total"] == disk["versions"] + disk["caches"] + disk["other"]
    assert disk["versions"] > 0 and disk["caches"] > 0 and disk["version_count"] == 3

    serving = report["serving"]
    assert len(serving["workers"]) == 2
    for worker in serving["workers"]:
        assert 0 < worker["private_mb"] <= worker["rss_mb"]
        assert 0 < worker["pss_mb"] <= worker["rss_mb"] and worker["shared_mb"] <= worker["rss_mb"]
    uncached = serving["uncached"]
    assert serving["cold_start_s"] > 0 and uncached["req_s"] > 0 and serving["ceiling_req_s"] > 0
    assert 0 < uncached["p50_ms"] <= uncached["p99_ms"]
    assert uncached["cache_hit_rate"] < 0.05  # uncached indeed: every request ranked
    assert serving["ratio_to_ceiling"] == pytest.approx(
        uncached["req_s"] / serving["ceiling_req_s"], abs=2e-3
    )

    assert [t["target"] for t in report["targets"]] == [t.name for t in TARGETS]
    assert all(t["verdict"] in {"PASS", "FAIL"} for t in report["targets"])
    assert report["setup"]["workers"] == 2 and report["setup"]["encoder"] == "fake-hashing"
    # the kept work directory holds the full feed and the last night's (unique slugs)
    slugs = [article["slug"] for article in read_lines(work / "archive.jsonl")]
    assert len(slugs) == len(set(slugs)) == 400
    assert not (work / "archive-night-1.jsonl").exists()
    assert len(read_lines(work / "archive-night-2.jsonl")) == 402
