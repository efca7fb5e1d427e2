"""`recommender bench reindex` and `bench all`: they run and report the right shape.

Nothing here is timed: tiny feeds and the hashing encoder stand in for the real model, whose
speed is what the benchmark itself measures.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from bench.reindex_bench import (
    ReindexResult,
    Round,
    TimedEncoder,
    change_some,
    read_articles,
    run_benchmark,
    summarise,
    table_rows,
    write_feed,
)
from console.main import app
from recommender.encoding.encoder_protocol import FAKE_MODEL
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.settings import Settings
from tests.bench.test_api_bench import FAKE_WRK
from tests.support.helpers import synthetic_records, write_jsonl


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "feed.jsonl", synthetic_records(per_topic=4))  # 24 articles


def test_the_timed_encoder_adds_up_the_time_inside_the_one_it_wraps() -> None:
    inner = HashingEncoder()
    timed = TimedEncoder(inner)
    vectors = timed.encode(["volcano lava", "football goal"])
    assert (vectors == inner.encode(["volcano lava", "football goal"])).all()
    assert timed.model_id == inner.model_id and timed.dimension == inner.dimension
    assert timed.seconds > 0


def test_an_evenly_spread_share_of_the_articles_changes_title(feed: Path) -> None:
    articles = read_articles(feed, limit=20)
    edited, changed = change_some(articles, 0.1)
    assert changed == 2
    assert [row for row, (a, b) in enumerate(zip(articles, edited, strict=True)) if a != b] == [
        0,
        10,
    ]
    assert edited[10].title == f"{articles[10].title} (updated)"
    assert change_some(articles, 0.0) == (articles, 0)


def test_a_written_feed_reads_back_as_the_same_articles(feed: Path, tmp_path: Path) -> None:
    articles = read_articles(feed, limit=5)
    assert len(articles) == 5
    assert read_articles(write_feed(tmp_path / "copy.jsonl", articles), limit=100) == articles


def test_a_run_measures_encoding_a_full_and_an_incremental_reindex(
    feed: Path, tmp_path: Path
) -> None:
    result = run_benchmark(
        Settings(model=FAKE_MODEL),
        feed,
        limit=20,
        rounds=2,
        share=0.05,
        work_dir=tmp_path,
        say=lambda _: None,
    )
    assert (result.texts, result.changed, result.rounds) == (20, 1, 2)
    assert result.encode_texts_per_second > 0 and result.full_texts_per_second > 0
    assert result.full_over_encode > 0 and result.incremental_over_full > 0
    assert 0 <= result.full_other_seconds <= result.full_seconds
    assert result.incremental_encoding_seconds <= result.incremental_seconds


def test_ratios_are_taken_round_by_round_and_judged_against_the_targets() -> None:
    def measured(scale: float) -> Round:  # a noisy neighbour slows a whole round alike
        return Round(
            encode=10 * scale, encode_cpu=20 * scale, full=11 * scale, full_cpu=21 * scale,
            full_encoding=10 * scale, incremental=0.4 * scale, incremental_encoding=0.1 * scale,
            incremental_embedded=1,
        )  # fmt: skip

    result = summarise([measured(1), measured(3), measured(1)], texts=100, changed=1)
    assert result.encode_texts_per_second == 10.0 and result.full_seconds == 11.0
    assert result.full_over_encode == pytest.approx(10 / 11, abs=1e-3)
    assert result.full_over_encode_cpu == pytest.approx(20 / 21, abs=1e-3)
    assert result.incremental_over_full == pytest.approx(0.4 / 11, abs=1e-4)
    rows = table_rows(result)
    assert all(len(row) == 3 for row in rows)
    targets = [row[2] for row in rows if row[2] != "-"]
    assert targets == [">= 0.9: met", "<= 0.05: met"]
    slow = dataclasses.replace(result, full_over_encode=0.8, incremental_over_full=0.2)
    assert [row[2] for row in table_rows(slow) if row[2] != "-"] == [
        ">= 0.9: NOT met",
        "<= 0.05: NOT met",
    ]
    unknown = summarise([dataclasses.replace(measured(1), encode_cpu=None)], texts=1, changed=0)
    assert unknown.full_over_encode_cpu is None


def test_the_command_prints_json(
    feed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RECOMMENDER_MODEL", FAKE_MODEL)
    result = CliRunner().invoke(
        app, ["bench", "reindex", "--source", str(feed), "--limit", "12", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["setup"]["model"] == FAKE_MODEL
    assert ReindexResult(**report["result"]).texts == 12


def test_the_command_refuses_a_missing_feed(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "reindex", "--source", str(tmp_path / "no.jsonl")])
    assert result.exit_code == 2 and "no such feed" in result.output


def test_bench_all_prints_one_table_of_every_benchmark(
    feed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrk = tmp_path / "wrk"
    wrk.write_text(FAKE_WRK.format(python=sys.executable))
    wrk.chmod(0o755)
    monkeypatch.setenv("RECOMMENDER_MODEL", FAKE_MODEL)  # for every child process
    monkeypatch.setenv("RECOMMENDER_EXACT_SEARCH_MAX", "100")  # the catalog takes the IVF path
    result = CliRunner().invoke(
        app,
        ["bench", "all", "--texts", "12", "--source", str(feed), "--catalog-size", "300",
         "--catalog-queries", "10", "--api-duration", "2", "--wrk", str(wrk), "--no-ray"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["bench", "measure", "value", "target"]
    benches = [line.split()[0] for line in lines[1:]]
    # Two rows a backend, three more for each but torch (cosine, two nDCG); no Ray rows: --no-ray.
    assert benches == ["api"] * 3 + ["reindex"] * 7 + ["backends"] * 12 + ["catalog"] * 8
    assert "Ray" not in result.stdout
    assert "IVF" in result.stdout and "full reindex / raw encode" in result.stdout


@pytest.mark.model
def test_reindex_refuses_a_device_this_machine_lacks_in_one_line(
    feed: Path, tmp_path: Path
) -> None:
    import torch

    device = "mps" if torch.cuda.is_available() else "cuda"  # no machine has both
    result = CliRunner().invoke(
        app, ["reindex", "--source", str(feed), "--data-dir", str(tmp_path), "--device", device]
    )
    assert result.exit_code == 5  # the model cannot be loaded
    assert f"recommender: error: device {device!r} is not available" in result.stderr
    assert "Traceback" not in result.output
