"""A ranking signal is one module plus its registration (`recommender.signals.registry`): a toy
signal (`tests.support.length_ratio_signal`), registered and nothing else, is fitted and stored
in new versions, weighs in their precomputed lists, drafts and live articles, explains itself,
and is a strategy of `recommender evaluate`; versions built before it serve as they were built."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from console.main import app as console
from index.index_errors import CorruptVersionError
from index.serving.recommender_engine import Recommender
from index.serving.version_loader import load_recommender
from index.state.live_store import LiveStore
from index.versions.index_version import IndexVersion
from index.versions.version_store import VersionStore
from recommender.articles import embedding_text, lexical_text, validate_record
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from recommender.signals.registry import reasons, register, unregister
from recommender.tfidf import term_counts
from tests.support.helpers import build_fake_index, synthetic_records, write_jsonl
from tests.support.length_ratio_signal import LENGTHS, LengthRatio, length_ratio

ENCODER = HashingEncoder()
WEIGHT = LengthRatio.parameters["length_weight"]
QUERY = RelatedQuery(limit=10)
LIVE = {
    "slug": "volcano-live",
    "title": "Volcano eruption update",
    "summary": "Latest on the volcano: lava ash iceland",
    "body": "volcano eruption lava ash iceland flights grounded magma crater update " * 3,
    "section": "world",
    "published_at": "2024-03-12T13:00:00Z",
}
#: When the draft is written: after every article of the corpus (none is under embargo).
DRAFTED = 1_711_000_000.0
DRAFT = "Volcano ash grounds flights over Iceland as lava reaches the crater rim"


def _records() -> list[dict[str, Any]]:
    """The synthetic corpus, its articles made of different lengths."""
    return [
        {**record, "body": record["body"] + " extra words" * (row % 5)}
        for row, record in enumerate(synthetic_records())
    ]


@contextmanager
def _registered() -> Iterator[LengthRatio]:
    signal = LengthRatio()
    register(signal)
    try:
        yield signal
    finally:
        unregister(signal)


def _length(text: str) -> float:
    return float(sum(term_counts(text).values()))


def _put_live(settings: Settings, record: dict[str, Any]) -> None:
    article = validate_record(record).article
    live = LiveStore.in_directory(settings.data_dir)
    try:
        live.upsert(
            article.slug, record, ENCODER.model_id, ENCODER.encode([embedding_text(article)])[0]
        )
    finally:
        live.close()


def _scores(recommender: Recommender, suggestions: Any) -> dict[str, float]:
    return {recommender.card(s.row)["slug"]: s.score for s in suggestions}


def _served(recommender: Recommender) -> dict[str, Any]:
    """Every list, the draft's and the live article's, with their scores."""
    lists = {
        card["slug"]: _scores(recommender, recommender.related(card["slug"], QUERY))
        for card in recommender.cards
    }
    vector = ENCODER.encode([DRAFT])[0]
    lists["draft"] = _scores(
        recommender, recommender.related_to_draft(vector, DRAFT, QUERY, DRAFTED)
    )
    return lists


def _lengths(recommender: Recommender) -> dict[str, float]:
    return {
        card["slug"]: _length(lexical_text(validate_record(card | {"body": body}).article))
        for card, body in zip(recommender.cards, _bodies(recommender), strict=True)
    }


def _bodies(recommender: Recommender) -> list[str]:
    by_slug = {r["slug"]: r["body"] for r in [*_records(), LIVE]}
    return [by_slug[card["slug"]] for card in recommender.cards]


def test_a_registered_signal_is_stored_in_versions_and_weighs_everywhere(tmp_path: Path) -> None:
    records = _records()
    plain, _ = build_fake_index(tmp_path / "plain", records)
    _put_live(plain, LIVE)
    without = _served(load_recommender(plain.index)[0])
    with _registered():
        settings, _ = build_fake_index(tmp_path / "data", records)
        _put_live(settings, LIVE)
        recommender, _ = load_recommender(settings.index)
        version = recommender.version
        # Built and loaded: its parameter in the ranking block, its file checksummed.
        assert version.manifest.ranking["length_weight"] == WEIGHT
        assert LENGTHS in version.manifest.files
        lengths = _lengths(recommender)
        stored = version.signals["length"].lengths
        assert stored.tolist() == [lengths[card["slug"]] for card in version.cards]
        served = _served(recommender)
        # Precomputed lists, live articles (as sources and candidates) and the draft: each
        # score is the plain one plus the weighted length ratio.
        lengths["draft"] = _length(DRAFT)
        for source, scores in served.items():
            common = scores.keys() & without[source].keys()
            assert len(common) >= 3, source
            for slug in common:
                ratio = length_ratio(np.array(lengths[source]), np.array(lengths[slug]))
                added = scores[slug] - without[source][slug]
                assert added == pytest.approx(WEIGHT * float(ratio), abs=1e-5), (source, slug)
        # Explained, for version and live rows alike.
        row, live_row = recommender.row_of("volcano-0"), recommender.row_of("volcano-live")
        why = recommender.explain(row, live_row)
        expected = length_ratio(np.array(lengths["volcano-0"]), np.array(lengths["volcano-live"]))
        assert why["length_ratio"] == round(float(expected), 4)
        assert {"semantic", "lexical", "bm25", "days_apart", "shared_terms"} <= why.keys()
        shown = [reason.text for reason in reasons(why)]  # the editors' page
        assert f"lengths alike {expected:.2f}" in shown and len(shown) == 7
        # Checksummed like every file of a version.
        path = VersionStore(settings.data_dir).current_path()
        np.save(path / LENGTHS, stored + 1, allow_pickle=False)
        with pytest.raises(CorruptVersionError, match=LENGTHS):
            IndexVersion.load(VersionStore(settings.data_dir), version.id, expected_model=None)


def test_a_version_built_before_a_signal_serves_as_it_was_built(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data", _records())
    _put_live(settings, LIVE)
    before = _served(load_recommender(settings.index)[0])
    with _registered():
        recommender, warning = load_recommender(settings.index)
        assert warning is None and "length_weight" not in recommender.version.manifest.ranking
        assert _served(recommender) == before


def test_recommender_evaluate_scores_a_registered_signal(tmp_path: Path) -> None:
    feed = write_jsonl(tmp_path / "feed.jsonl", _records())
    env = {"RECOMMENDER_DATA_DIR": str(tmp_path / "data"), "RECOMMENDER_MODEL": "fake-hashing"}
    arguments = ["evaluate", "--source", str(feed), "--relevance", "topic", "--json"]
    with _registered():
        result = CliRunner().invoke(console, arguments, env=env)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["ranking"]["length_weight"] == WEIGHT
        assert list(report["results"]) == [
            "lexical",
            "semantic",
            "tfidf",
            "bm25",
            "length",
            "default",
        ]
        assert (
            0 < report["results"]["length"]["ndcg_at_k"] < report["results"]["default"]["ndcg_at_k"]
        )
    result = CliRunner().invoke(console, arguments, env=env)
    assert "length" not in json.loads(result.stdout)["results"]
