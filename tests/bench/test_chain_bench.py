"""`recommender bench chain`: its changes to a catalog, its comparison, and a short chain end to
end on a slice of bbc-news (nothing asserts a speed)."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
from typer.testing import CliRunner

from bench.chain_bench import change_catalog, compare, run_chain
from console.main import app
from recommender.articles import validate_record
from tests.support.helpers import SHARED, require_shared, synthetic_records

BBC = SHARED / "data" / "bbc-news" / "articles.jsonl"


def test_a_night_edits_removes_and_adds_its_share_of_the_catalog() -> None:
    catalog = synthetic_records(per_topic=8)
    spare = [{**record, "slug": f"{record['slug']}-spare"} for record in catalog[:10]]
    before = {record["slug"]: record for record in catalog}
    edited, removed, added = change_catalog(catalog, spare, 0.2, random.Random(0), 1)
    assert (edited, removed, added) == (4, 3, 3)  # 10 of 48
    after = {record["slug"]: record for record in catalog}
    assert len(before.keys() - after.keys()) == removed
    assert [slug for slug in after if slug not in before] == [f"{r['slug']}" for r in catalog[-3:]]
    assert sum(1 for s in after if s in before and after[s] != before[s]) == edited
    assert len(spare) == 7


def test_the_comparison_counts_the_shared_entries_and_each_list_quality() -> None:
    records = synthetic_records()  # three articles a topic: each relevant to the other two
    articles = [validate_record(record).article for record in records]
    full = {"volcano-0": ["volcano-1", "volcano-2"], "volcano-1": ["volcano-0", "volcano-2"]}
    incremental = {"volcano-0": ["volcano-1", "bitcoin-0"], "volcano-1": full["volcano-1"]}
    figures = compare(incremental, full, articles, "labels.topic")
    assert figures["overlap_at_5"] == 0.75
    assert figures["ndcg_at_5_full"] == 1.0 > figures["ndcg_at_5_incremental"]
    assert figures["ndcg_at_5_delta"] < 0 and figures["judged_sources"] == 2


def test_a_short_chain_stays_incremental_and_close_to_a_full_rebuild(tmp_path: Path) -> None:
    feed = require_shared(BBC)
    report = run_chain(feed, "category", 160, 3, 0.02, 0, tmp_path, lambda _: None)
    assert [night["rebuild"] for night in report["nights"]] == ["incremental"] * 3
    assert report["articles"] == 160
    assert report["overlap_at_5"] >= 0.95
    assert abs(report["ndcg_at_5_delta"]) <= 0.02
    assert report["verdict"] in {"PASS", "FAIL"}


def test_the_command_prints_json_and_exits_1_on_a_failed_verdict(tmp_path: Path) -> None:
    feed = require_shared(BBC)
    result = CliRunner().invoke(
        app,
        ["bench", "chain", "--feed", str(feed), "--label", "category", "--articles", "60",
         "--nights", "1", "--changed", "0.05", "--work-dir", str(tmp_path), "--json"],
    )  # fmt: skip
    report = orjson.loads(result.stdout)
    assert result.exit_code == (0 if report["verdict"] == "PASS" else 1)
    assert set(report) >= {"overlap_at_5", "ndcg_at_5_incremental", "ndcg_at_5_full", "nights"}
