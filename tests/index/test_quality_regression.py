"""Suggestion quality as a regression test: `recommender evaluate` with the real model on a
real labelled slice of ../shared/data (whole story groups of allsides-neus-stories: the same
event told by several outlets). The served blend (`default`) must do at least as well as each
signal alone, and every source must get a full list.

The slice's embeddings are cached in one data dir for the session: a second evaluation over the
same slice reuses them (and so would any other test that evaluates it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import REPO, SHARED, require_shared, write_jsonl

pytestmark = pytest.mark.model

STORIES = SHARED / "data" / "allsides-neus-stories" / "articles.jsonl"
#: Whole story groups, taken in file order until about this many articles.
SLICE_ARTICLES = 240
METRICS = ("ndcg_at_k", "recall_at_k", "mrr")
QUALITY_DOC = REPO / "docs" / "quality.md"
#: How far a measured figure may be from the published one. The int8 encoder's kernels differ by
#: CPU (AVX-512 VNNI or AVX2), and so do its embeddings: the semantic column moved by up to 0.009
#: between the machine that measured the table and an AMD EPYC (AVX2). One list of the slice
#: moving one place moves nDCG@5 by about 0.002, so this is about five lists.
PINNED_WITHIN = 0.01


def published_slice_figures() -> dict[str, dict[str, float]]:
    """strategy -> metric -> value, from docs/quality.md's table of this slice."""
    text = QUALITY_DOC.read_text(encoding="utf-8")
    section = text.split("## The regression slice", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", section, re.M)
    assert rows, "docs/quality.md has no regression-slice table"
    return {name: dict(zip(METRICS, map(float, values), strict=True)) for name, *values in rows}


def story_slice(limit: int) -> list[dict[str, Any]]:
    """The first stories of the set, whole (a story is never cut in two), about `limit` articles."""
    records: list[dict[str, Any]] = []
    with require_shared(STORIES).open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            story = record["labels"]["story_id"]
            if len(records) >= limit and story != records[-1]["labels"]["story_id"]:
                break
            records.append(record)
    return records


@pytest.fixture(scope="session")
def quality_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's data dir of quality evaluations: its embedding cache outlives each test."""
    return tmp_path_factory.mktemp("quality") / "data"


def evaluate(feed: Path, data_dir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RECOMMENDER_MODEL")}
    result = subprocess.run(
        [sys.executable, "-m", "console", "evaluate", "--source", str(feed),
         "--relevance", "story_id", "--k", "5", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**env, "RECOMMENDER_DATA_DIR": str(data_dir)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_the_served_blend_trails_no_signal_by_more_than_one_list(
    quality_data_dir: Path, tmp_path: Path
) -> None:
    records = story_slice(SLICE_ARTICLES)
    stories = {r["labels"]["story_id"] for r in records}
    assert 200 <= len(records) <= 300 and len(records) >= 2 * len(stories)
    report = evaluate(write_jsonl(tmp_path / "slice.jsonl", records), quality_data_dir)
    results = report["results"]
    print({name: {m: results[name][m] for m in METRICS} for name in results})  # the figures
    # A few records of the set are refused or merged as duplicates (and a story may be left with
    # one article, which has nothing to find); nearly every article is judged.
    assert len(records) - 5 <= report["sources"] <= report["articles"] <= len(records)
    # The slice's resolution is one list: a source's list gaining or losing one relevant item moves
    # a figure by up to 1/sources. The served blend may trail a signal alone by no more than that.
    one_list = 1 / report["sources"]
    for metric in METRICS:
        default = results["default"][metric]
        for baseline in ("lexical", "semantic", "tfidf", "bm25"):
            assert default >= results[baseline][metric] - one_list, (metric, baseline, results)
    # The served ranker keeps every list full (a baseline alone may not: that is its weakness).
    assert results["default"]["full_list_rate"] == 1.0, results["default"]
    # Not a corpus where every strategy is perfect by construction.
    assert results["lexical"]["ndcg_at_k"] < 1.0 and results["default"]["ndcg_at_k"] > 0.5
    # The figures docs/quality.md publishes for this slice, each to within PINNED_WITHIN.
    pinned = published_slice_figures()
    assert set(pinned) <= set(results), (set(pinned), set(results))
    for strategy, figures in pinned.items():
        for metric, value in figures.items():
            measured = results[strategy][metric]
            assert abs(measured - value) <= PINNED_WITHIN, (strategy, metric, measured, value)
    assert (quality_data_dir / "embeddings.sqlite3").exists()  # for the next evaluation
