"""Reindex pipeline: versions, incremental embedding, strictness, the lock, neighbours."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.index_errors import ReindexLocked
from index.serving.version_loader import load_current, load_recommender
from index.state.term_count_cache import TermCountCache
from index.versions.reindex_lock import reindex_lock
from index.versions.reindex_pipeline import analyse_articles, reindex
from index.versions.vector_index import IndexSpec
from index.versions.version_store import VersionStore
from recommender.articles import embedding_text, lexical_text, text_hash, validate_record
from recommender.encoding.encoder_protocol import Vectors
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.errors import FeedError, StrictModeError
from recommender.ingest.feeds import FeedReport
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from recommender.tfidf import TextTerms
from tests.support.helpers import build_fake_index, fake_settings, synthetic_records, write_jsonl


class CountingEncoder(HashingEncoder):
    """The hashing encoder, counting how many texts it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.calls += len(texts)
        return super().encode(texts)


def test_reindex_publishes_a_verified_version(tmp_path: Path) -> None:
    settings, summary = build_fake_index(tmp_path / "data")
    assert summary.published and summary.indexed == summary.read == 18 and summary.bad == 0
    version, _ = load_current(settings.index)
    assert version.id == summary.version
    assert version.size == 18
    manifest = version.manifest
    assert manifest.model == "fake-hashing" and manifest.dimension == 64
    assert set(manifest.files) >= {"vectors.npy", "index.faiss", "cards.jsonl", "neighbours.npy"}
    assert np.allclose(np.linalg.norm(version.vectors, axis=1), 1.0, atol=1e-5)


def _dated(
    records: list[dict[str, Any]], day_of: Callable[[int, int], float]
) -> list[dict[str, Any]]:
    """`records` (synthetic, in topic order) with article i of topic t published on day_of(t, i)."""
    base = datetime(2020, 1, 1, tzinfo=UTC)
    per_topic = len(records) // len({r["labels"]["topic"] for r in records})
    return [
        {
            **r,
            "published_at": (
                base + timedelta(days=day_of(n // per_topic, n % per_topic))
            ).isoformat(),
        }
        for n, r in enumerate(records)
    ]


def test_the_time_weight_follows_how_much_the_catalogs_dates_say(tmp_path: Path) -> None:
    records = synthetic_records(per_topic=8)
    # Stories: a topic's articles within a day, topics months apart.
    stories = _dated(records, lambda topic, i: topic * 90 + i / 10)
    # A wire: each day carries every topic, so a date does not tell topics apart.
    wire = _dated(records, lambda topic, i: i * 2 + topic / 10)
    told, _ = build_fake_index(tmp_path / "stories", stories)
    silent, _ = build_fake_index(tmp_path / "wire", wire)
    told_ranking = load_current(told.index)[0].manifest.ranking
    silent_ranking = load_current(silent.index)[0].manifest.ranking
    assert told_ranking["date_informativeness"] > 0.5
    assert silent_ranking["date_informativeness"] < 0.15
    assert told_ranking["time"] == silent_ranking["time"] == told.index.fusion["time"]  # configured


def test_the_name_boost_is_recorded_and_weights_drafts_the_same_way(tmp_path: Path) -> None:
    records = synthetic_records()
    records[0]["body"] = "Rescuers reached Valparaiso after the eruption"
    settings, _ = build_fake_index(tmp_path / "data", records, name_boost=1.5)
    version, _ = load_current(settings.index)
    tfidf = version.signals["lexical"]
    assert version.manifest.ranking["name_boost"] == 1.5 and tfidf.model.name_boost == 1.5
    row = version.rows[records[0]["slug"]]
    text = "\n".join([records[0]["title"], records[0]["summary"], records[0]["body"]])
    served = tfidf.matrix[row].toarray()
    assert np.allclose(version.prepare(text)["lexical"].toarray(), served, atol=1e-6)
    plain, _ = build_fake_index(tmp_path / "plain", records)
    unboosted = load_current(plain.index)[0].signals["lexical"]
    column = tfidf.model.vocabulary["valparaiso"]
    assert served[0, column] > unboosted.matrix[row].toarray()[0, column]


def test_drafts_and_live_articles_get_the_bm25_rows_a_rebuild_gives(tmp_path: Path) -> None:
    records = synthetic_records()
    settings, _ = build_fake_index(tmp_path / "data", records)
    version, _ = load_current(settings.index)
    assert version.manifest.ranking["bm25"] == settings.index.fusion["bm25"] > 0
    for record in records[:3]:
        prepared = version.prepare(lexical_text(validate_record(record).article))
        row = version.rows[record["slug"]]
        for name in ("lexical", "bm25"):
            built = version.side.features[name][row].toarray()
            assert np.allclose(prepared[name].toarray(), built, atol=1e-6), name


def test_neighbours_are_the_topic_group_and_never_self(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data")
    version, _ = load_current(settings.index)
    for slug, row in version.rows.items():
        ids = version.neighbour_ids[row]
        assert row not in ids.tolist()
        top_two = {version.cards[i]["slug"].rsplit("-", 1)[0] for i in ids[:2]}
        assert top_two == {slug.rsplit("-", 1)[0]}


def test_second_run_with_nothing_changed_embeds_nothing(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data")
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records())
    encoder = CountingEncoder()
    first = reindex(settings.index, [feed], encoder)
    second = reindex(settings.index, [feed], encoder)
    assert encoder.calls == 18
    assert (second.embedded, second.reused, second.published) == (0, 18, False)
    assert second.version == first.version


def test_incremental_run_embeds_only_changed_articles(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data")
    records = synthetic_records()
    encoder = CountingEncoder()
    first = reindex(settings.index, [write_jsonl(tmp_path / "a.jsonl", records)], encoder)
    records[0]["title"] = "A corrected headline about the volcano"
    second = reindex(settings.index, [write_jsonl(tmp_path / "b.jsonl", records)], encoder)
    assert (second.embedded, second.reused, second.published) == (1, 17, True)
    assert second.version != first.version
    assert VersionStore(settings.data_dir).current_id() == second.version


def _version_content(settings: Settings) -> dict[str, Any]:
    version, _ = load_current(settings.index)
    return {
        "cards": list(version.cards),
        "neighbour_ids": version.neighbour_ids.tolist(),
        "neighbour_scores": version.neighbour_scores,
        "vocabulary": version.signals["lexical"].model.vocabulary,
        "idf": version.signals["lexical"].model.idf,
        "lexical": version.side.features["lexical"].toarray(),
        "bm25": version.side.features["bm25"].toarray(),
        "bm25_idf": version.signals["bm25"].model.idf,
        "ranking": version.manifest.ranking,
    }


@pytest.mark.parametrize("name_boost", [0.0, 1.5])
def test_an_incremental_reindex_builds_what_a_full_one_does(
    tmp_path: Path, name_boost: float
) -> None:
    records = synthetic_records(per_topic=8)
    # Cached embeddings and analyses reused, the statistics refitted (no drift tolerated): the
    # lists of an incremental rebuild are tests/index/test_incremental_reindex.py's.
    nightly, _ = build_fake_index(
        tmp_path / "nightly", records[1:], name_boost=name_boost, incremental_drift_max=0
    )
    records[3]["title"] = "Valparaiso volcano: a corrected headline"
    records[9]["body"] += " Officials in Reykjavik said 2,000 flights were grounded"
    del records[20]
    feed = write_jsonl(tmp_path / "changed.jsonl", records)  # one added, two edited, one gone
    incremental = reindex(nightly.index, [feed], HashingEncoder())
    fresh = fake_settings(tmp_path / "fresh", name_boost=name_boost)
    full = reindex(fresh.index, [feed], HashingEncoder(), full=True)
    assert (incremental.embedded, full.embedded) == (3, len(records))
    got, expected = _version_content(nightly), _version_content(fresh)
    for name, value in expected.items():
        if isinstance(value, np.ndarray):
            assert np.allclose(got[name], value, atol=1e-6), name
        else:
            assert got[name] == value, name


def test_an_incremental_reindex_analyses_only_changed_texts(tmp_path: Path) -> None:
    records = synthetic_records()
    # The statistics refitted on every run, so that the fit reads each stored analysis.
    settings, _ = build_fake_index(tmp_path / "data", records, incremental_drift_max=0)
    records[0]["title"] = "A corrected headline about the volcano"
    articles = [validate_record(record).article for record in records]
    assert analyse_articles(articles, settings.index)[1] == 1
    # An unchanged text's stored analysis is what the next build uses: plant one and see it.
    cache = TermCountCache(settings.index.term_count_cache_path)
    cache.put_many(
        False, [(text_hash(lexical_text(articles[5])), TextTerms(["planted"], [1], None))]
    )
    cache.close()
    feed = write_jsonl(tmp_path / "changed.jsonl", records)
    reindex(settings.index, [feed], HashingEncoder())
    assert "planted" in load_current(settings.index)[0].signals["lexical"].model.vocabulary
    reindex(settings.index, [feed], HashingEncoder(), full=True)  # analyses every text again
    assert "planted" not in load_current(settings.index)[0].signals["lexical"].model.vocabulary


def test_full_reembeds_everything_and_publishes(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data")
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records())
    reindex(settings.index, [feed], HashingEncoder())
    encoder = CountingEncoder()
    again = reindex(settings.index, [feed], encoder, full=True)
    assert encoder.calls == 18 and again.embedded == 18 and again.published


def test_strict_mode_refuses_bad_records_and_publishes_nothing(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data")
    feed = write_jsonl(tmp_path / "feed.jsonl", [*synthetic_records(), {"slug": "no-title"}])
    with pytest.raises(StrictModeError, match=r"feed\.jsonl:19"):
        reindex(settings.index, [feed], HashingEncoder(), strict=True)
    assert VersionStore(settings.data_dir).version_ids() == []


def test_bad_records_are_skipped_and_counted(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data")
    feed = write_jsonl(tmp_path / "feed.jsonl", [*synthetic_records(), {"slug": "no-title"}])
    report = FeedReport()
    summary = reindex(settings.index, [feed], HashingEncoder(), report=report)
    assert (summary.read, summary.bad, summary.indexed) == (19, 1, 18)
    assert str(report.bad[0]).startswith(f"{feed}:19:")


def test_empty_feed_publishes_nothing(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data")
    feed = tmp_path / "empty.jsonl"
    feed.write_text("", encoding="utf-8")
    with pytest.raises(FeedError, match="no valid article"):
        reindex(settings.index, [feed], HashingEncoder())


def test_a_second_concurrent_reindex_is_refused(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path / "data")
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records())
    with reindex_lock(settings.data_dir), pytest.raises(ReindexLocked, match="nothing was changed"):
        reindex(settings.index, [feed], HashingEncoder())
    assert VersionStore(settings.data_dir).version_ids() == []


def test_summary_is_one_json_line_with_the_contract_keys(tmp_path: Path) -> None:
    _, summary = build_fake_index(tmp_path / "data")
    line = summary.to_json()
    assert "\n" not in line
    assert set(json.loads(line)) >= {
        "version",
        "read",
        "bad",
        "embedded",
        "reused",
        "indexed",
        "seconds",
    }


@pytest.mark.parametrize(("ann_index", "kind"), [(None, "ivf"), ("hnsw", "hnsw")])
def test_large_catalog_uses_the_approximate_index_named_with_measured_recall(
    tmp_path: Path, ann_index: str | None, kind: str
) -> None:
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(400)]
    records = [{"slug": f"doc-{i}", "title": " ".join(rng.choice(words, 12))} for i in range(300)]
    chosen = {"ann_index": ann_index} if ann_index else {}
    settings, _ = build_fake_index(tmp_path / "data", records, exact_search_max=100, **chosen)
    manifest = load_current(settings.index)[0].manifest
    assert manifest.index["kind"] == kind
    assert manifest.recall_at_10 >= 0.98


def test_a_large_catalog_can_use_ivf_and_its_version_serves_drafts(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(400)]
    records = [{"slug": f"doc-{i}", "title": " ".join(rng.choice(words, 12))} for i in range(300)]
    settings, _ = build_fake_index(
        tmp_path / "data", records, exact_search_max=100, ann_index="ivf"
    )
    recommender, _ = load_recommender(settings.index)
    manifest = recommender.version.manifest
    assert manifest.index["kind"] == "ivf" and manifest.recall_at_10 >= 0.98
    assert manifest.index["ivf_lists"] == 300 // 39 and 1 <= manifest.index["ivf_probe"] <= 7
    assert recommender.version.index.spec == IndexSpec.from_dict(manifest.index)
    # A draft made of half of one article's words finds that article first (a draft of all of
    # them would be dropped as its near-duplicate).
    text = " ".join(str(records[42]["title"]).split()[:6])
    draft = recommender.related_to_draft(
        HashingEncoder().encode([text])[0], text, RelatedQuery(limit=3)
    )
    assert recommender.card(draft[0].row)["slug"] == "doc-42"


def test_the_index_settings_are_part_of_what_a_rebuild_compares(tmp_path: Path) -> None:
    records = [{"slug": f"doc-{i}", "title": f"story {i} about w{i % 7}"} for i in range(60)]
    settings, first = build_fake_index(tmp_path / "data", records, exact_search_max=10)
    feed = tmp_path / "data-feed.jsonl"
    assert load_current(settings.index)[0].manifest.index["kind"] == "ivf"
    again = reindex(settings.index, [feed], HashingEncoder())
    assert not again.published
    hnsw = fake_settings(settings.data_dir, exact_search_max=10, ann_index="hnsw")
    switched = reindex(hnsw.index, [feed], HashingEncoder())
    assert switched.published and switched.version != first.version
    assert load_current(hnsw.index)[0].manifest.index["kind"] == "hnsw"
    lower = fake_settings(
        settings.data_dir, exact_search_max=10, ann_index="hnsw", hnsw_ef_construction=40
    )
    rebuilt = reindex(lower.index, [feed], HashingEncoder())
    assert rebuilt.published
    assert load_current(lower.index)[0].manifest.index["ef_construction"] == 40


class BatchRecordingEncoder(HashingEncoder):
    """The hashing encoder with a small batch, recording the texts of each call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    @property
    def batch_size(self) -> int:
        return 4

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(list(texts))
        return super().encode(texts)


def test_texts_are_encoded_one_batch_per_call_so_progress_moves_every_batch(
    tmp_path: Path,
) -> None:
    settings = fake_settings(tmp_path / "data")
    feed = write_jsonl(tmp_path / "feed.jsonl", synthetic_records())
    encoder = BatchRecordingEncoder()
    summary = reindex(settings.index, [feed], encoder)
    assert summary.embedded == 18
    assert [len(call) for call in encoder.calls] == [4, 4, 4, 4, 2]
    # The same vectors as one call for all of them would give.
    whole, _ = build_fake_index(tmp_path / "whole")
    assert np.array_equal(
        load_current(settings.index)[0].vectors, load_current(whole.index)[0].vectors
    )


def test_texts_are_encoded_longest_first_and_each_vector_lands_on_its_article(
    tmp_path: Path,
) -> None:
    """Like lengths are batched together (a feed mixing summaries with full texts pads least),
    and the published vectors are still each article's own."""
    records = synthetic_records()
    for row, record in enumerate(records):  # every other article a long one
        record["body"] = " ".join([record["body"]] * (12 if row % 2 else 1))
    settings = fake_settings(tmp_path / "data")
    encoder = BatchRecordingEncoder()
    reindex(settings.index, [write_jsonl(tmp_path / "feed.jsonl", records)], encoder)
    lengths = [len(text) for call in encoder.calls for text in call]
    assert max(len(call) for call in encoder.calls) == 4 and len(lengths) == len(records)
    assert lengths == sorted(lengths, reverse=True)
    version, _ = load_current(settings.index)
    texts = [embedding_text(validate_record(record).article) for record in records]
    by_slug = dict(zip((record["slug"] for record in records), texts, strict=True))
    expected = HashingEncoder().encode([by_slug[card["slug"]] for card in version.cards])
    assert np.allclose(version.vectors, expected)
