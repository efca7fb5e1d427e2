"""Live upserts and retractions: the overlay seen by ranking, durability, and the rebuild rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from index.serving.version_loader import load_recommender
from index.state.live_store import LiveStore
from index.versions.reindex_pipeline import reindex
from index.versions.version_store import VersionStore
from recommender.articles import embedding_text, validate_record
from recommender.embedding import HashingEncoder
from recommender.errors import ArticleNotFound
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from tests.support.helpers import build_fake_index, synthetic_records, write_jsonl

ENCODER = HashingEncoder()


def put(settings: Settings, record: dict[str, Any]) -> None:
    article = validate_record(record).article
    vector = ENCODER.encode([embedding_text(article)])[0]
    live = LiveStore(settings.data_dir)
    try:
        live.upsert(article.slug, record, ENCODER.model_id, vector)
    finally:
        live.close()


def retract(settings: Settings, slug: str) -> None:
    live = LiveStore(settings.data_dir)
    try:
        live.retract(slug)
    finally:
        live.close()


def related(settings: Settings, slug: str, limit: int = 5) -> list[str]:
    recommender, _ = load_recommender(settings)
    suggestions = recommender.related(slug, RelatedQuery(limit=limit))
    return [recommender.card(s.row)["slug"] for s in suggestions]


NEW_VOLCANO = {
    "slug": "volcano-live",
    "title": "Volcano eruption update",
    "summary": "Latest on the volcano: volcano eruption lava ash iceland flights grounded magma",
    "body": "volcano eruption lava ash iceland flights grounded magma crater update",
    "section": "world",
    "published_at": "2024-03-12T13:00:00Z",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    built, _ = build_fake_index(tmp_path / "data")
    return built


def test_an_upserted_article_has_suggestions_and_appears_in_its_neighbours_lists(
    settings: Settings,
) -> None:
    put(settings, NEW_VOLCANO)
    assert set(related(settings, "volcano-live", 2)) <= {"volcano-0", "volcano-1", "volcano-2"}
    assert "volcano-live" in related(settings, "volcano-1", 3)


def test_a_retracted_article_disappears_everywhere(settings: Settings) -> None:
    assert "volcano-1" in related(settings, "volcano-0", 3)
    retract(settings, "volcano-1")
    for slug in ("volcano-0", "volcano-2", "wildfire-0"):
        assert "volcano-1" not in related(settings, slug, 17)
    with pytest.raises(ArticleNotFound):
        related(settings, "volcano-1")


def test_an_upsert_replaces_the_indexed_version_of_a_slug(settings: Settings) -> None:
    put(settings, {**NEW_VOLCANO, "slug": "bitcoin-0", "title": "Corrected: volcano story"})
    recommender, _ = load_recommender(settings)
    assert recommender.card(recommender.row_of("bitcoin-0"))["title"] == "Corrected: volcano story"
    assert "bitcoin-0" in related(settings, "volcano-0", 4)
    assert related(settings, "bitcoin-1", 17).count("bitcoin-0") == 1


def test_upserting_a_retracted_slug_brings_it_back(settings: Settings) -> None:
    retract(settings, "volcano-2")
    put(settings, {**NEW_VOLCANO, "slug": "volcano-2"})
    assert "volcano-2" in related(settings, "volcano-0", 3)


def test_live_changes_survive_a_restart(settings: Settings) -> None:
    put(settings, NEW_VOLCANO)
    retract(settings, "volcano-1")
    entries = {e.slug: e.retracted for e in LiveStore(settings.data_dir).entries()}
    assert entries == {"volcano-live": False, "volcano-1": True}


def test_a_rebuild_keeps_live_upserts_its_feed_lacks_and_retires_those_it_has(
    settings: Settings, tmp_path: Path
) -> None:
    put(settings, NEW_VOLCANO)
    put(settings, {**NEW_VOLCANO, "slug": "football-9", "title": "Live football story"})
    retract(settings, "volcano-1")
    records = synthetic_records()
    records.append({"slug": "football-9", "title": "Football story from the feed"})
    summary = reindex(settings, [write_jsonl(tmp_path / "nightly.jsonl", records)], ENCODER)
    assert summary.published
    version, _ = load_recommender(settings)
    indexed = version.version.rows
    assert "volcano-live" in indexed  # kept: the feed lacks it
    assert "volcano-1" not in indexed  # retractions hold through rebuilds
    assert version.card(version.row_of("football-9"))["title"] == "Football story from the feed"
    remaining = {e.slug for e in LiveStore(settings.data_dir).entries()}
    assert remaining == {"volcano-live", "volcano-1"}  # the feed's copy retired the live one
    assert VersionStore(settings.data_dir).current_id() == summary.version
