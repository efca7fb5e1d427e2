"""`recommender bench learning --quick`: the reader simulator end to end over the real service
code (widget lists, draws, signed beacons, the log, the nightly recount), at the short size
the tests can afford; the long run's figures are in docs/learning.md."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from bench.learning_bench import NEUS, QUICK
from bench.reader_model import SAME_STORY, SAME_TOPIC, UNRELATED, LabelledArticle, Readers
from console.main import app
from tests.support.helpers import require_shared


def readers(spread: float = 0.8) -> Readers:
    articles = [
        LabelledArticle("a", "s1", "politics"),
        LabelledArticle("b", "s1", "politics"),
        LabelledArticle("c", "s2", "politics"),
        LabelledArticle("d", "s3", None),
    ]
    return Readers(articles, spread, np.random.default_rng(0))


def test_the_click_model_falls_with_the_slot_and_follows_the_labels() -> None:
    model = readers(spread=0.0)  # every article equally attractive
    assert model.relevance("a", "b") == SAME_STORY
    assert model.relevance("a", "c") == SAME_TOPIC
    assert model.relevance("a", "d") == model.relevance("d", "c") == UNRELATED
    assert model.probability("a", "b", 2) == pytest.approx(model.probability("a", "b", 1) / 2)
    assert model.probability("a", "c", 1) == pytest.approx(model.probability("a", "b", 1) / 2)


def test_calibration_gives_the_content_box_the_click_rate_asked_for() -> None:
    model = readers()
    lists = {"a": ["b", "c"], "b": ["a", "c"], "c": ["a", "d"], "d": ["a", "b"]}
    model.calibrate(lists, 0.03)
    expected = sum(
        share * model.expected_clicks(source, lists[source])
        for source, share in zip(model.slugs, model.traffic, strict=True)
    )
    assert expected == pytest.approx(0.03)
    assert sorted(model.traffic, reverse=True)[0] == pytest.approx(2 * sorted(model.traffic)[-2])


def test_the_quick_run_reports_the_contract_and_forged_clicks_move_nothing() -> None:
    require_shared(NEUS)
    result = CliRunner().invoke(app, ["bench", "learning", "--quick", "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["seeds"] == QUICK.seeds
    for field in ("ope_coverage", "ctr_holdout", "ctr_learned", "lift_ci_low", "ndcg_content"):
        assert isinstance(report[field], float), field
    assert report["forged_rank_change"] == 0
    assert [spread["spread"] for spread in report["spreads"]] == list(QUICK.spreads)
    for spread in report["spreads"]:
        assert spread["forged_refused"] == QUICK.forged * QUICK.seeds  # not one forged click counts
        assert spread["verdicts"]["forged clicks move nothing"]
        # The content-only box is clicked as calibrated (the model's expectation, not noisy).
        assert spread["expected"]["holdout"] == pytest.approx(QUICK.target_ctr, abs=0.006)
        assert 0 <= spread["exploration_cost"] < 0.05
        assert len(spread["ope"]) == 2 * QUICK.seeds
        for check in spread["ope"]:
            assert check["low"] <= check["estimate"] <= check["high"]
            assert 0 <= check["support"] <= 1 and check["truth"] > 0
        # Quality on the story labels: the hashing encoder finds most same-story reports, and
        # the clicks the run taught reorder the lists without pushing them far from the labels.
        assert 0.5 < spread["ndcg_content"] <= 1 and 0 < spread["ndcg_learned"] <= 1
        assert spread["ndcg_learned"] != spread["ndcg_content"]  # the clicks changed the lists
