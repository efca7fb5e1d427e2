"""A reindex holds its catalog a block at a time: of each article its card and text hashes, the
texts still to embed or analyse put aside (in memory, past a budget in a scratch file), the
analyses read back as arrays. Its stages are in the summary with their time and peak memory;
a build in tiny blocks writes the same version as one in a single block."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson

from index.versions.compact_catalog import (
    EMBEDDING,
    LEXICAL,
    SCRATCH_DIR,
    BlockSizes,
    CatalogEntry,
    run_scratch,
)
from index.versions.manifest import read_manifest
from index.versions.reindex_pipeline import reindex
from index.versions.reindex_stages import StageMeter
from index.versions.version_store import VersionStore
from recommender.articles import validate_record
from recommender.encoding.hashing_encoder import HashingEncoder
from tests.support.helpers import (
    build_fake_index,
    build_in_blocks,
    synthetic_records,
    write_jsonl,
)

STAGES = ["read", "embed", "analyse", "index", "fit", "neighbours", "write", "publish"]


def test_the_summary_gives_each_stage_in_order_with_its_time_and_peak_memory(
    tmp_path: Path,
) -> None:
    settings, built = build_fake_index(tmp_path / "data")
    line = json.loads(built.to_json())
    assert [stage["stage"] for stage in line["stages"]] == STAGES
    for stage in line["stages"]:
        assert set(stage) == {"stage", "seconds", "peak_memory_mb", "engine"}
        assert stage["engine"] == "local"
        assert stage["seconds"] >= 0 and stage["peak_memory_mb"] > 0
    # Nothing changed: the run stops after embedding (all from the cache) and says so.
    feed = write_jsonl(tmp_path / "same.jsonl", synthetic_records())
    again = reindex(settings.index, [feed], HashingEncoder())
    assert not again.published and [stage["stage"] for stage in again.stages] == STAGES[:2]


def test_a_stage_records_its_own_peak_memory_not_the_run_s() -> None:
    meter = StageMeter()
    with meter.stage("before"):
        pass
    with meter.stage("large"):
        held = np.ones(128 * 1024 * 1024 // 8)  # 128 MB, touched
        del held
    with meter.stage("after"):
        pass
    before, large, after = (figures.peak_memory_mb for figures in meter.stages)
    assert large > before + 100
    assert after < large - 100  # the high-water mark was reset when the stage began
    assert [figures.stage for figures in meter.stages] == ["before", "large", "after"]


def test_a_build_in_tiny_blocks_writes_the_files_of_a_build_in_one_block(tmp_path: Path) -> None:
    records = synthetic_records()
    records[4]["slug"] = records[2]["slug"]  # a duplicate: the later record wins, in place
    tiny = BlockSizes(rows=3, spill_memory=1)
    for boost in (0.0, 1.5):
        whole, _ = build_fake_index(tmp_path / f"whole-{boost}", records, name_boost=boost)
        blocked, _ = build_in_blocks(tmp_path / f"tiny-{boost}", records, tiny, name_boost=boost)
        files = [
            read_manifest(VersionStore(settings.data_dir).current_path()).files
            for settings in (whole, blocked)
        ]
        assert files[0] == files[1]  # every file's size and SHA-256
        assert not (blocked.data_dir / SCRATCH_DIR).exists()


def test_an_incremental_build_in_tiny_blocks_equals_a_full_one(tmp_path: Path) -> None:
    records = synthetic_records()
    tiny = BlockSizes(rows=4, spill_memory=100)
    nightly, _ = build_in_blocks(tmp_path / "nightly", records[1:], tiny)
    records[3]["title"] = "Valparaiso volcano: a corrected headline"
    feed = write_jsonl(tmp_path / "changed.jsonl", records)
    incremental = reindex(nightly.index, [feed], HashingEncoder(), blocks=tiny)
    fresh, _ = build_fake_index(tmp_path / "fresh", records)
    assert incremental.embedded == 2 and incremental.published
    got, expected = (
        read_manifest(VersionStore(settings.data_dir).current_path()).files
        for settings in (nightly, fresh)
    )
    assert got == expected


def test_texts_past_the_budget_wait_in_the_scratch_file_and_are_read_back(tmp_path: Path) -> None:
    (tmp_path / SCRATCH_DIR).mkdir()
    (tmp_path / SCRATCH_DIR / "left-by-a-killed-run").write_text("stale")
    with run_scratch(tmp_path, budget=12) as scratch:
        assert not (tmp_path / SCRATCH_DIR / "left-by-a-killed-run").exists()
        spilled = scratch.texts
        spilled.put(EMBEDDING, "a", "volcano")
        assert not (tmp_path / SCRATCH_DIR / "texts.sqlite3").exists()  # within the budget
        spilled.put(EMBEDDING, "b", "ash cloud")  # past it: both go to the file
        spilled.put(LEXICAL, "a", "volcano erupts")
        spilled.put(EMBEDDING, "c", "flights")  # waits in memory again
        assert (tmp_path / SCRATCH_DIR / "texts.sqlite3").exists()
        assert spilled.lookup(EMBEDDING)(["c", "a", "b"]) == ["flights", "volcano", "ash cloud"]
        assert spilled.lookup(LEXICAL)(["a"]) == ["volcano erupts"]
    assert not (tmp_path / SCRATCH_DIR).exists()


def test_cards_wait_in_the_scratch_file_and_read_back_in_catalog_order(tmp_path: Path) -> None:
    cards = [validate_record(record).article.card() for record in synthetic_records()]
    with run_scratch(tmp_path, budget=1_000) as scratch:  # the first few in the file
        entries = [
            CatalogEntry(scratch.cards.append(encoded), len(encoded), "", "")
            for encoded in (orjson.dumps(card) for card in cards)
        ]
        assert (tmp_path / SCRATCH_DIR / "cards.jsonl").stat().st_size < sum(
            entry.card_size for entry in entries
        )  # and the last ones still in memory
        order = [len(cards) - 1, 0, 2]  # a catalog's order is not the file's (a duplicate)
        read = scratch.cards.cards([entries[row] for row in order])
        assert len(read) == 3 and list(read) == [cards[row] for row in order]  # memory, file
        assert read[1] == cards[0] and read[1:] == [cards[0], cards[2]]
