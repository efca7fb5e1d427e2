"""A reindex that would lose more of the served catalog than RECOMMENDER_MAX_SHRINK allows
publishes nothing and leaves the served version as it was; the first run is never refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.index_errors import CatalogShrinkRefused
from index.state.state_stores import open_stores
from index.versions.reindex_pipeline import reindex
from index.versions.version_store import VersionStore
from recommender.encoding.hashing_encoder import HashingEncoder
from tests.support.helpers import fake_settings, write_jsonl

RECORDS = [{"slug": f"story-{n}", "title": f"Story number {n}"} for n in range(20)]


def test_the_loss_allowed_is_published_and_one_more_article_is_refused(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data", max_shrink=0.1)
    feed = tmp_path / "feed.jsonl"
    reindex(settings.index, [write_jsonl(feed, RECORDS)], HashingEncoder())
    assert reindex(settings.index, [write_jsonl(feed, RECORDS[:18])], HashingEncoder()).published
    served = VersionStore(settings.data_dir).current_id()

    # 16 of 18 served: 11.1 % lost, over the 10 % allowed.
    write_jsonl(feed, RECORDS[:16])
    with pytest.raises(CatalogShrinkRefused, match=r"2 fewer than the 18 served: 11\.1% of"):
        reindex(settings.index, [feed], HashingEncoder())
    assert VersionStore(settings.data_dir).current_id() == served
    forced = reindex(settings.index, [feed], HashingEncoder(), allow_shrink=True)
    assert forced.published and forced.indexed == 16


def test_the_first_run_and_a_limit_of_one_never_refuse(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data", max_shrink=1.0)
    feed = tmp_path / "feed.jsonl"
    assert reindex(settings.index, [write_jsonl(feed, RECORDS)], HashingEncoder()).published
    summary = reindex(settings.index, [write_jsonl(feed, RECORDS[:1])], HashingEncoder())
    assert summary.published and summary.indexed == 1


def test_retractions_since_the_build_are_not_counted_as_lost(tmp_path: Path) -> None:
    """Editors retracted 5 of 20 through the live API: a feed of the other 15 loses nothing of
    what readers are served, so it publishes; a feed missing 3 more of them is refused."""
    settings = fake_settings(tmp_path / "data", max_shrink=0.1)
    feed = tmp_path / "feed.jsonl"
    reindex(settings.index, [write_jsonl(feed, RECORDS)], HashingEncoder())
    stores = open_stores(settings.index)
    try:
        for record in RECORDS[:5]:
            stores.live.retract(record["slug"])
    finally:
        stores.close()
    write_jsonl(feed, RECORDS[8:])  # 12 left of the 15 served: 20 % lost
    with pytest.raises(CatalogShrinkRefused, match=r"3 fewer than the 15 served"):
        reindex(settings.index, [feed], HashingEncoder())
    summary = reindex(settings.index, [write_jsonl(feed, RECORDS)], HashingEncoder())
    assert summary.published and summary.indexed == 15  # the retracted five stay out
