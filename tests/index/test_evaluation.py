"""Offline evaluation: relevance from labels or qrels, strategies, metrics, the CLI command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.evaluation import evaluate, prepare
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.errors import FeedError, InvalidQuery
from recommender.evaluation.metrics import METRIC_NAMES
from recommender.evaluation.relevance import LabelRelevance, QrelsRelevance
from recommender.ingest.feeds import FeedReport, load_articles
from tests.support.helpers import REPO, fake_settings, synthetic_records, write_jsonl

METRICS = set(METRIC_NAMES)


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    records = synthetic_records()
    records.append({"slug": "unlabelled-distractor", "title": "Weather is mild today"})
    return write_jsonl(tmp_path / "feed.jsonl", records)


def test_label_relevance_groups_articles_sharing_a_value(feed: Path) -> None:
    articles = list(load_articles([feed], FeedReport()).values())
    relevance = LabelRelevance.from_articles(articles, "topic")
    assert relevance.relevant("volcano-0") == {"volcano-1": 1.0, "volcano-2": 1.0}
    assert relevance.relevant("unlabelled-distractor") == {}


def test_list_valued_labels_count_when_any_value_is_shared(tmp_path: Path) -> None:
    feed = write_jsonl(
        tmp_path / "f.jsonl",
        [
            {"slug": "a", "title": "A", "labels": {"topics": ["grain", "wheat"]}},
            {"slug": "b", "title": "B", "labels": {"topics": ["wheat"]}},
            {"slug": "c", "title": "C", "labels": {"topics": ["oil"]}},
            {"slug": "d", "title": "D", "category": "oil"},
        ],
    )
    articles = list(load_articles([feed], FeedReport()).values())
    topics = LabelRelevance.from_articles(articles, "topics")
    assert topics.relevant("a") == {"b": 1.0} and topics.relevant("c") == {}
    category = LabelRelevance.from_articles(articles, "category")  # a top-level field
    assert category.relevant("d") == {}
    section = LabelRelevance.from_articles(articles, "section")
    assert section.relevant("d") == {}


def test_qrels_are_read_with_grades_and_bad_lines_named(tmp_path: Path) -> None:
    qrels = tmp_path / "q.tsv"
    qrels.write_text("# comment\nvolcano-0\tvolcano-1\t2\nvolcano-0\tbitcoin-0\t0\n")
    assert QrelsRelevance.from_file(qrels).relevant("volcano-0") == {"volcano-1": 2.0}
    qrels.write_text("volcano-0\tvolcano-1\n")
    with pytest.raises(FeedError, match=r"q\.tsv:1: expected"):
        QrelsRelevance.from_file(qrels)


def test_strategies_are_scored_with_every_metric(feed: Path, tmp_path: Path) -> None:
    data = prepare(fake_settings(tmp_path / "data").index, [feed], HashingEncoder())
    articles = data.articles
    result = evaluate(data, LabelRelevance.from_articles(articles, "topic"), k=2)
    assert result["articles"] == 19 and result["sources"] == 18 and result["k"] == 2
    assert set(result["results"]) == {"lexical", "semantic", "tfidf", "bm25", "default"}
    assert result["ranking"] == data.version.manifest.ranking  # what `default` was scored with
    assert 0.0 <= result["ranking"]["date_informativeness"] <= 1.0
    for scores in result["results"].values():
        assert set(scores) == METRICS
    # by construction each topic's other two articles are its nearest ones
    for exact in ("semantic", "tfidf", "bm25"):
        assert result["results"][exact]["ndcg_at_k"] == 1.0, exact
        assert result["results"][exact]["full_list_rate"] == 1.0, exact
    assert result["results"]["default"]["ndcg_at_k"] == 1.0
    assert result["results"]["default"]["full_list_rate"] == 1.0


def test_unknown_strategy_and_no_labels_are_refused(feed: Path, tmp_path: Path) -> None:
    data = prepare(fake_settings(tmp_path / "data").index, [feed], HashingEncoder())
    relevance = LabelRelevance.from_articles(data.articles, "topic")
    with pytest.raises(InvalidQuery, match="unknown strategy"):
        evaluate(data, relevance, strategies=["magic"])
    with pytest.raises(InvalidQuery, match="no article has a relevant"):
        evaluate(data, LabelRelevance.from_articles(data.articles, "nothing"))


def test_evaluation_never_touches_the_served_index(feed: Path, tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data")
    prepare(settings.index, [feed], HashingEncoder())
    assert not (settings.data_dir / "CURRENT").exists()
    assert settings.index.embedding_cache_path.exists()  # but the embedding cache is shared


def evaluate_cli(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RECOMMENDER_MODEL": "fake-hashing",
        "RECOMMENDER_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "console", "evaluate", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_cli_prints_one_json_object_and_a_plot(feed: Path, tmp_path: Path) -> None:
    plot = tmp_path / "quality.png"
    result = evaluate_cli(
        tmp_path, "--source", feed, "--relevance", "topic", "--k", "2", "--json", "--plot", plot
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["k"] == 2 and body["dataset"] == str(feed)
    assert set(body["results"]["default"]) == METRICS
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = evaluate_cli(tmp_path, "--source", feed, "--relevance", "topic")
    assert table.returncode == 0, table.stderr
    assert "ndcg@5" in table.stdout and "default" in table.stdout
    usage = evaluate_cli(tmp_path, "--source", feed)
    assert usage.returncode == 2 and "exactly one of --relevance" in usage.stderr
