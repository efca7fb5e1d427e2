"""The caches stay bounded: the nightly run and `recommender gc` prune the embedding,
term-count and fetch caches to what the kept versions, the live upserts and the last run can
use, and the SQLite files shrink on disk. Real files, real SQLite, the real CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from index.state.embedding_cache import EmbeddingCache
from index.state.live_store import LiveStore
from index.versions.cache_gc import collect_garbage
from index.versions.manifest import MANIFEST_NAME, read_manifest
from index.versions.reindex_lock import reindex_lock
from index.versions.reindex_pipeline import reindex
from index.versions.text_hashes import TEXT_HASHES, read_text_hashes
from index.versions.version_store import VersionStore
from recommender.articles import embedding_text, text_hash, validate_record
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.ingest.options import fetch_cache_dir
from recommender.ingest.web.fetch_cache import CachedAnswer, FetchCache
from tests.e2e.test_reindex_interrupted import CLI, big_feed
from tests.support.helpers import REPO, fake_settings

COUNT = 400


def cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    child_env = {
        **os.environ,
        "RECOMMENDER_MODEL": "fake-hashing",
        "RECOMMENDER_DATA_DIR": str(data_dir),
        **env,
    }
    child_env.pop("REDIS_URL", None)
    return subprocess.run(
        [*CLI, *args], cwd=REPO, env=child_env, capture_output=True, text=True, timeout=300
    )


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as database:
        ((count,),) = database.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(count)


def on_disk(path: Path) -> int:
    """A SQLite file's bytes with its write-ahead log."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def caches(data_dir: Path) -> tuple[Path, Path]:
    return data_dir / "embeddings.sqlite3", data_dir / "term_counts.sqlite3"


def test_gc_shrinks_the_caches_back_to_the_catalog_after_every_article_was_edited_twice(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    for revision in range(3):  # three nightly runs, every article's text new in each
        ran = cli(
            data_dir, "reindex", "--source", str(big_feed(tmp_path / "feed.jsonl", COUNT, revision))
        )
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["embedded"] == COUNT
    embeddings, term_counts = caches(data_dir)
    # Five versions are kept by default: the three revisions are all still of use.
    assert rows(embeddings, "embeddings") == rows(term_counts, "term_counts") == 3 * COUNT
    grown = on_disk(embeddings), on_disk(term_counts)
    fresh = tmp_path / "fresh"  # what the catalog alone takes, built once
    assert cli(fresh, "reindex", "--source", str(tmp_path / "feed.jsonl")).returncode == 0
    alone = on_disk(caches(fresh)[0]), on_disk(caches(fresh)[1])
    store = VersionStore(data_dir)
    older = store.version_ids()[:2]

    dry = cli(data_dir, "gc", "--dry-run", RECOMMENDER_KEEP_VERSIONS="1")
    assert dry.returncode == 0, dry.stderr
    would = json.loads(dry.stdout)
    assert would["dry_run"] and would["versions_removed"] == older
    assert would["embeddings"]["removed"] == 2 * COUNT and would["bytes_freed"] > 0
    assert store.version_ids()[:2] == older and rows(embeddings, "embeddings") == 3 * COUNT

    before = on_disk(embeddings) + on_disk(term_counts)
    ran = cli(data_dir, "gc", RECOMMENDER_KEEP_VERSIONS="1")
    assert ran.returncode == 0, ran.stderr
    assert len(ran.stdout.splitlines()) == 1
    report = json.loads(ran.stdout)
    assert report["versions_removed"] == older and store.version_ids() == [store.current_id()]
    for name in ("embeddings", "term_counts"):
        assert (report[name]["removed"], report[name]["kept"]) == (2 * COUNT, COUNT)
    assert rows(embeddings, "embeddings") == rows(term_counts, "term_counts") == COUNT
    shrunk = on_disk(embeddings), on_disk(term_counts)
    # As measured by gc itself, whose opening adds a frame or two to each write-ahead log.
    assert abs(report["bytes_freed"] - (before - sum(shrunk))) <= 16 * 1024
    for now, before, catalog in zip(shrunk, grown, alone, strict=True):
        assert now < before / 2  # the files shrank on disk, not only inside
        assert now <= catalog * 1.2 + 64 * 1024, (now, catalog)

    # Nothing the catalog uses went: a rebuild (new URLs) embeds and analyses nothing.
    records = [json.loads(line) for line in (tmp_path / "feed.jsonl").read_text().splitlines()]
    moved = tmp_path / "moved.jsonl"
    moved.write_text(
        "".join(
            json.dumps({**r, "url": f"https://example.com/{r['slug']}"}) + "\n" for r in records
        )
    )
    again = cli(data_dir, "reindex", "--source", str(moved))
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["published"] and summary["embedded"] == 0
    assert rows(term_counts, "term_counts") == COUNT


def test_the_nightly_run_prunes_what_no_kept_version_uses(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = fake_settings(data_dir, keep_versions=2)
    for revision in range(4):
        feed = big_feed(tmp_path / "feed.jsonl", 50, revision)
        assert reindex(settings.index, [feed], HashingEncoder()).published
    embeddings, term_counts = caches(data_dir)
    assert rows(embeddings, "embeddings") == rows(term_counts, "term_counts") == 2 * 50
    assert len(VersionStore(data_dir).version_ids()) == 2


def _live_record(slug: str) -> dict[str, Any]:
    return {"slug": slug, "title": "Live only story", "body": "published between two runs"}


def test_gc_keeps_live_upserts_and_drops_other_models_and_unread_pages(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = fake_settings(data_dir)
    encoder = HashingEncoder()
    feed = big_feed(tmp_path / "feed.jsonl", 30)
    reindex(settings.index, [feed], encoder)
    vector = np.ones(encoder.dimension, dtype=np.float32)
    record = _live_record("live-one")
    live_hash = text_hash(embedding_text(validate_record(record).article))
    cache = EmbeddingCache(settings.index.embedding_cache_path)
    try:
        cache.put_many(encoder.model_id, [(live_hash, vector), ("f" * 64, vector)])
        cache.put_many("another-model/64", [("e" * 64, vector)])
    finally:
        cache.close()
    live = LiveStore.in_directory(data_dir)
    live.upsert("live-one", record, encoder.model_id, vector)
    fetch = FetchCache(fetch_cache_dir(data_dir))
    for url in ("https://news.example/old", "https://news.example/read"):
        fetch.put(CachedAnswer(url, '"v1"', None, "text/html", b"<p>page</p>" * 100))
    last_run = time.time()
    old = last_run - 3600  # the old page was last read before the last run
    for path in fetch_cache_dir(data_dir).glob("??/*"):
        os.utime(path, (old, old))
    assert fetch.get("https://news.example/read") is not None  # read by the run: touched
    fetch.record_run(last_run - 1)
    store = VersionStore(data_dir)
    try:
        report = collect_garbage(settings.index, store, live)
    finally:
        live.close()
    assert report.notes == []
    # The stray entry and the other model's go; the catalog's and the live upsert's stay.
    assert report.embeddings.removed == 2 and report.embeddings.kept == 30 + 1
    cache = EmbeddingCache(settings.index.embedding_cache_path)
    try:
        assert cache.known(encoder.model_id, [live_hash, "f" * 64]) == {live_hash}
        assert cache.known("another-model/64", ["e" * 64]) == set()
    finally:
        cache.close()
    assert (report.fetch_cache.removed, report.fetch_cache.kept) == (1, 1)
    assert report.fetch_cache.bytes_freed > 1100
    assert fetch.get("https://news.example/old") is None
    assert fetch.get("https://news.example/read") is not None


def test_a_version_without_text_hashes_keeps_the_caches_whole(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = fake_settings(data_dir)
    reindex(settings.index, [big_feed(tmp_path / "a.jsonl", 20, 0)], HashingEncoder())
    reindex(settings.index, [big_feed(tmp_path / "b.jsonl", 20, 1)], HashingEncoder())
    store = VersionStore(data_dir)
    current = store.current_path()
    assert read_text_hashes(current, read_manifest(current)) is not None
    # As a version written before the file existed: no file, no manifest entry.
    manifest = json.loads((current / MANIFEST_NAME).read_text())
    del manifest["files"][TEXT_HASHES]
    (current / MANIFEST_NAME).write_text(json.dumps(manifest))
    (current / TEXT_HASHES).unlink()
    store.verified(store.current_id())
    live = LiveStore.in_directory(data_dir)
    try:
        report = collect_garbage(settings.index, store, live)
    finally:
        live.close()
    assert report.embeddings.removed == report.term_counts.removed == 0
    assert any("records no text hashes" in note for note in report.notes)
    assert rows(caches(data_dir)[0], "embeddings") == 40


def test_gc_waits_for_no_reindex_and_a_race_loses_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = fake_settings(data_dir, keep_versions=1)
    reindex(settings.index, [big_feed(tmp_path / "feed.jsonl", 200, 0)], HashingEncoder())
    with reindex_lock(data_dir):
        locked = cli(data_dir, "gc")
    assert locked.returncode == 75 and locked.stdout == ""
    assert locked.stderr.startswith("recommender: error: another reindex is running")

    env = {"RECOMMENDER_KEEP_VERSIONS": "1"}
    for revision in range(1, 4):
        feed = big_feed(tmp_path / f"feed{revision}.jsonl", 200, revision)
        children = [
            subprocess.Popen(
                [*CLI, *args],
                cwd=REPO,
                env={
                    **os.environ,
                    "RECOMMENDER_MODEL": "fake-hashing",
                    "RECOMMENDER_DATA_DIR": str(data_dir),
                    **env,
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in (["reindex", "--source", str(feed)], ["gc"], ["gc"])
        ]
        for child in children:  # each ran whole, or found the lock taken and changed nothing
            _, err = child.communicate(timeout=300)
            assert child.returncode in (0, 75), err
    store = VersionStore(data_dir)
    current = store.current_path()
    used = read_text_hashes(current, read_manifest(current))
    assert used is not None
    cache = EmbeddingCache(settings.index.embedding_cache_path)
    try:
        present = cache.known(read_manifest(current).model_id, sorted(used.embedding))
    finally:
        cache.close()
    assert present == used.embedding  # nothing the served version uses was lost


def test_a_cache_of_the_first_layout_is_rebuilt_smaller_by_its_first_prune(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.sqlite3"
    vectors = {f"{n:064x}": np.full(384, n, dtype=np.float32) for n in range(2000)}
    with sqlite3.connect(path) as first:  # as this project wrote it before: WITHOUT ROWID
        first.execute("PRAGMA journal_mode=WAL")
        first.execute(
            "CREATE TABLE embeddings (model_id TEXT NOT NULL, text_hash TEXT NOT NULL, "
            "vector BLOB NOT NULL, PRIMARY KEY (model_id, text_hash)) WITHOUT ROWID"
        )
        first.executemany(
            "INSERT INTO embeddings VALUES (?, ?, ?)",
            [("model/384", key, vector.tobytes()) for key, vector in vectors.items()],
        )
    before = on_disk(path)
    kept = sorted(vectors)[::2]
    cache = EmbeddingCache(path)
    try:
        result = cache.prune({"model/384": set(kept)})
        assert (result.removed, result.kept, result.note) == (1000, 1000, None)
        stored = cache.get_many("model/384", sorted(vectors))
    finally:
        cache.close()
    assert sorted(stored) == kept
    assert all(np.array_equal(stored[key], vectors[key]) for key in kept)
    with sqlite3.connect(path) as rebuilt:
        ((layout,),) = rebuilt.execute("SELECT sql FROM sqlite_master WHERE name = 'embeddings'")
        ((mode,),) = rebuilt.execute("PRAGMA auto_vacuum").fetchall()
    assert "WITHOUT ROWID" not in layout and mode == 2  # incremental from now on
    # Half the entries, and each no longer spilled to an overflow page: well under half.
    assert on_disk(path) < before * 0.3, (on_disk(path), before)
