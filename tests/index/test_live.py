"""Live upserts and retractions: the overlay seen by ranking, durability, and the rebuild rule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.serving.live_overlay import LiveOverlay
from index.serving.version_loader import load_current, load_recommender
from index.state.live_store import LiveStore
from index.versions.reindex_pipeline import reindex
from index.versions.version_store import VersionStore
from recommender.articles import embedding_text, validate_record
from recommender.encoding.encoder_protocol import Vectors
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.errors import ArticleNotFound
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from tests.support.helpers import build_fake_index, synthetic_records, write_jsonl

ENCODER = HashingEncoder()


def put(settings: Settings, record: dict[str, Any]) -> None:
    article = validate_record(record).article
    vector = ENCODER.encode([embedding_text(article)])[0]
    live = LiveStore.in_directory(settings.data_dir)
    try:
        live.upsert(article.slug, record, ENCODER.model_id, vector)
    finally:
        live.close()


def retract(settings: Settings, slug: str) -> None:
    live = LiveStore.in_directory(settings.data_dir)
    try:
        live.retract(slug)
    finally:
        live.close()


def related(settings: Settings, slug: str, limit: int = 5) -> list[str]:
    recommender, _ = load_recommender(settings.index)
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
    recommender, _ = load_recommender(settings.index)
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
    entries = {e.slug: e.retracted for e in LiveStore.in_directory(settings.data_dir).entries()}
    assert entries == {"volcano-live": False, "volcano-1": True}


def test_a_rebuild_keeps_live_upserts_its_feed_lacks_and_retires_those_it_has(
    settings: Settings, tmp_path: Path
) -> None:
    put(settings, NEW_VOLCANO)
    put(settings, {**NEW_VOLCANO, "slug": "football-9", "title": "Live football story"})
    retract(settings, "volcano-1")
    records = synthetic_records()
    records.append({"slug": "football-9", "title": "Football story from the feed"})
    summary = reindex(settings.index, [write_jsonl(tmp_path / "nightly.jsonl", records)], ENCODER)
    assert summary.published
    version, _ = load_recommender(settings.index)
    indexed = version.version.rows
    assert "volcano-live" in indexed  # kept: the feed lacks it
    assert "volcano-1" not in indexed  # retractions hold through rebuilds
    assert version.card(version.row_of("football-9"))["title"] == "Football story from the feed"
    remaining = {e.slug for e in LiveStore.in_directory(settings.data_dir).entries()}
    assert remaining == {"volcano-live", "volcano-1"}  # the feed's copy retired the live one
    assert VersionStore(settings.data_dir).current_id() == summary.version


def test_a_version_that_carries_live_changes_leaves_them_out_of_its_overlay(
    settings: Settings, tmp_path: Path
) -> None:
    put(settings, NEW_VOLCANO)
    retract(settings, "volcano-1")
    feed = write_jsonl(tmp_path / "nightly.jsonl", synthetic_records())
    before, _ = load_recommender(settings.index)
    assert (before.overlay.size, before.overlay.retracted) == (1, frozenset({"volcano-1"}))
    assert reindex(settings.index, [feed], ENCODER).published
    after, _ = load_recommender(settings.index)
    # The version holds both changes, so the overlay is empty: it no longer grows with them.
    assert (after.overlay.size, after.overlay.retracted) == (0, frozenset())
    assert "volcano-live" in after.version.rows and "volcano-1" not in after.version.rows
    assert "volcano-live" in related(settings, "volcano-0", 3)
    with pytest.raises(ArticleNotFound):
        related(settings, "volcano-1")
    # The live store keeps them, so a later rebuild from a feed that lacks them keeps them too.
    changed = [*synthetic_records(), {"slug": "extra-1", "title": "Something else entirely"}]
    assert reindex(settings.index, [write_jsonl(tmp_path / "b.jsonl", changed)], ENCODER).published
    rebuilt, _ = load_recommender(settings.index)
    assert "volcano-live" in rebuilt.version.rows and "volcano-1" not in rebuilt.version.rows
    assert rebuilt.overlay.size == 0
    # A change made after the build is in the overlay again.
    put(settings, {**NEW_VOLCANO, "title": "Volcano eruption update, corrected"})
    corrected, _ = load_recommender(settings.index)
    assert corrected.overlay.size == 1
    title = corrected.card(corrected.row_of("volcano-live"))["title"]
    assert title == "Volcano eruption update, corrected"


class CorrectingEncoder(HashingEncoder):
    """Embeds like the fake, and makes a live correction while the first batch is embedded
    (the reindex has read the feed by then)."""

    def __init__(self, settings: Settings, correction: dict[str, Any]) -> None:
        super().__init__()
        self._settings = settings
        self._correction: dict[str, Any] | None = correction

    def encode(self, texts: Sequence[str]) -> Vectors:
        if self._correction is not None:
            correction, self._correction = self._correction, None
            put(self._settings, correction)
        return super().encode(texts)


def served_title(settings: Settings, slug: str) -> str:
    recommender, _ = load_recommender(settings.index)
    return str(recommender.card(recommender.row_of(slug))["title"])


def test_a_correction_made_while_a_rebuild_runs_survives_its_publication(
    settings: Settings, tmp_path: Path
) -> None:
    put(settings, {**NEW_VOLCANO, "slug": "bitcoin-0", "title": "First correction"})
    records = [*synthetic_records(), NEW_VOLCANO]  # one new article: the run has to embed
    second = {**NEW_VOLCANO, "slug": "bitcoin-0", "title": "Second correction"}
    summary = reindex(
        settings.index,
        [write_jsonl(tmp_path / "nightly.jsonl", records)],
        CorrectingEncoder(settings, second),
    )
    assert summary.published
    assert served_title(settings, "bitcoin-0") == "Second correction"
    assert [
        e.record["title"] for e in LiveStore.in_directory(settings.data_dir).upserted() if e.record
    ] == ["Second correction"]


def test_a_rerun_on_an_unchanged_feed_keeps_a_correction_made_since(
    settings: Settings, tmp_path: Path
) -> None:
    put(settings, {**NEW_VOLCANO, "slug": "bitcoin-0", "title": "Corrected: volcano story"})
    unchanged = tmp_path / "data-feed.jsonl"  # the feed build_fake_index published
    summary = reindex(settings.index, [unchanged], ENCODER)
    assert not summary.published
    assert served_title(settings, "bitcoin-0") == "Corrected: volcano story"
    assert {e.slug for e in LiveStore.in_directory(settings.data_dir).upserted()} == {"bitcoin-0"}


def test_an_overlay_brought_up_to_date_matches_one_read_afresh_and_reuses_the_rest(
    settings: Settings,
) -> None:
    put(settings, NEW_VOLCANO)
    put(settings, {**NEW_VOLCANO, "slug": "volcano-live-2", "title": "Second live story"})
    put(settings, {**NEW_VOLCANO, "slug": "bitcoin-0", "title": "Corrected: volcano story"})
    version, _ = load_current(settings.index)
    live = LiveStore.in_directory(settings.data_dir)
    try:
        before = LiveOverlay.read(version, live)
        put(settings, {**NEW_VOLCANO, "title": "Volcano eruption: corrected"})
        retract(settings, "volcano-live-2")
        retract(settings, "wildfire-1")
        updated = LiveOverlay.read(version, live, before)
        afresh = LiveOverlay.read(version, live)
    finally:
        live.close()
    for name in ("generation", "hidden", "retracted", "cards", "rows", "version_id"):
        assert getattr(updated, name) == getattr(afresh, name), name
    assert np.array_equal(updated.vectors, afresh.vectors)
    assert np.array_equal(updated.published, afresh.published)
    for name in ("lexical", "bm25"):
        assert (updated.features[name] != afresh.features[name]).nnz == 0, name
    assert [c["title"] for c in updated.cards] == [
        "Corrected: volcano story",
        "Volcano eruption: corrected",
    ]
    unchanged = next(seq for seq, a in before.prepared.items() if a.card["slug"] == "bitcoin-0")
    assert updated.prepared[unchanged] is before.prepared[unchanged]  # not read nor prepared again


def test_answers_show_the_cards_as_they_are_whatever_a_caller_did_to_an_earlier_one(
    settings: Settings,
) -> None:
    # A recommender keeps the fields of the cards it shows most decoded: a caller changing an
    # answer changes no later one, and a correction is shown by the next recommender.
    recommender, _ = load_recommender(settings.index)
    first = recommender.answer("volcano-0", RelatedQuery(limit=8))
    for item in first["items"]:
        item["title"] = "changed by a caller"
    again = recommender.answer("volcano-0", RelatedQuery(limit=8))["items"]
    assert [item["title"] for item in again] == [
        recommender.card(recommender.row_of(item["slug"]))["title"] for item in again
    ]
    corrected = again[0]["slug"]
    put(settings, {**NEW_VOLCANO, "slug": corrected, "title": "Corrected: volcano story"})
    recommender, _ = load_recommender(settings.index)
    titles = {
        i["slug"]: i["title"]
        for i in recommender.answer("volcano-0", RelatedQuery(limit=8))["items"]
    }
    assert titles[corrected] == "Corrected: volcano story"
