"""One behaviour for every live store and session store: the same calls give the same results on
SQLite and on PostgreSQL (each test runs on both), the rebuild rule included."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from index.serving.version_loader import load_recommender
from index.versions.reindex_pipeline import reindex
from recommender.articles import embedding_text, validate_record
from recommender.encoding.hashing_encoder import HashingEncoder
from tests.contract.conftest import OpenStores
from tests.support.helpers import build_fake_index, synthetic_records, write_jsonl

ENCODER = HashingEncoder()
VECTOR = np.array([0.0, 0.25, 0.5, 0.75], dtype=np.float32)


def test_changes_get_increasing_sequence_numbers_and_move_the_generation(
    open_state: OpenStores,
) -> None:
    live = open_state().live
    seen = {live.generation()}
    first = live.upsert("a", {"slug": "a", "title": "A"}, "m", VECTOR)
    seen.add(live.generation())
    second = live.retract("b")
    seen.add(live.generation())
    third = live.upsert("a", {"slug": "a", "title": "A again"}, "m", VECTOR)
    seen.add(live.generation())
    assert first < second < third
    assert len(seen) == 4
    assert [(h.slug, h.seq, h.retracted) for h in live.heads()] == [
        ("b", second, True),
        ("a", third, False),
    ]


def test_entries_carry_the_record_and_vector_as_put(open_state: OpenStores) -> None:
    live = open_state().live
    seq = live.upsert("a", {"slug": "a", "title": "Ä ünïcode", "n": [1, 2]}, "model-x", VECTOR)
    live.retract("b")
    (entry,) = live.entries([seq])
    assert entry.record == {"slug": "a", "title": "Ä ünïcode", "n": [1, 2]}
    assert entry.model_id == "model-x"
    assert entry.vector is not None
    assert np.array_equal(entry.vector, VECTOR)
    assert live.retracted_slugs() == {"b"}
    assert [e.slug for e in live.upserted()] == ["a"]
    assert [e.slug for e in live.entries()] == ["a", "b"]


def test_retiring_drops_only_the_very_change_absorbed(open_state: OpenStores) -> None:
    live = open_state().live
    live.upsert("a", {"slug": "a"}, "m", VECTOR)
    live.retract("b")
    absorbed = live.entries()
    live.upsert("a", {"slug": "a", "title": "later"}, "m", VECTOR)  # a later change stays
    before = live.generation()
    live.retire_upserts(absorbed)
    assert live.generation() != before
    assert [(e.slug, e.retracted) for e in live.entries()] == [("b", True), ("a", False)]


def test_another_handle_sees_a_change_once_it_refreshes(open_state: OpenStores) -> None:
    writer, reader = open_state(), open_state()
    writer.live.upsert("a", {"slug": "a"}, "m", VECTOR)
    reader.refresh()
    assert reader.live.generation() == writer.live.generation()
    assert [e.slug for e in reader.live.upserted()] == ["a"]


def test_simultaneous_changes_on_two_handles_never_share_a_sequence_number(
    open_state: OpenStores,
) -> None:
    handles = [open_state(), open_state()]
    barrier = threading.Barrier(len(handles))

    def write(index: int) -> list[int]:
        barrier.wait()
        live = handles[index].live
        return [live.upsert(f"s{index}-{i}", {"slug": "x"}, "m", VECTOR) for i in range(20)]

    with ThreadPoolExecutor(len(handles)) as pool:
        seqs = [seq for batch in pool.map(write, range(len(handles))) for seq in batch]
    assert len(set(seqs)) == 40
    assert len(handles[0].live.heads()) == 40


def test_sessions_open_check_and_revoke_alike(open_state: OpenStores) -> None:
    sessions, other = open_state().sessions, open_state().sessions
    sessions.open("s1", "ana", expires=4_102_444_800.0, credentials="k1")
    assert other.is_open("s1", "k1")
    assert not other.is_open("s1", "other credentials")
    other.revoke("s1")
    assert not sessions.is_open("s1", "k1")
    sessions.open("s2", "ben", expires=1.0, credentials="k1")  # already expired
    assert not sessions.is_open("s2", "k1")


def test_a_rebuild_keeps_live_upserts_its_feed_lacks_and_retires_those_it_has(
    open_state: OpenStores, tmp_path: Path
) -> None:
    settings = open_state.settings
    built, _summary = build_fake_index(settings.data_dir, database_url=settings.database.url)
    stores = open_state()
    for record in (
        {"slug": "volcano-live", "title": "Volcano eruption update", "section": "world"},
        {"slug": "football-9", "title": "Live football story", "section": "sport"},
    ):
        article = validate_record(record).article
        vector = ENCODER.encode([embedding_text(article)])[0]
        stores.live.upsert(article.slug, record, ENCODER.model_id, vector)
    stores.live.retract("volcano-1")
    records = [*synthetic_records(), {"slug": "football-9", "title": "Football from the feed"}]
    summary = reindex(built.index, [write_jsonl(tmp_path / "nightly.jsonl", records)], ENCODER)
    assert summary.published
    recommender, _warning = load_recommender(built.index)
    indexed = recommender.version.rows
    assert "volcano-live" in indexed  # kept: the feed lacks it
    assert "volcano-1" not in indexed  # retractions hold through rebuilds
    assert recommender.card(recommender.row_of("football-9"))["title"] == "Football from the feed"
    assert {e.slug for e in stores.live.entries()} == {"volcano-live", "volcano-1"}
