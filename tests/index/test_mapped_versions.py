"""A loaded version is memory maps of its files, not copies: its cards, neighbour lists and
lexical matrices are read from the page cache that every process loading it shares. A version
in the layout written before (cards without columns, `.npz` matrices) still loads and serves the
same answers."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import scipy.sparse as sp

from index.index_errors import CorruptVersionError
from index.serving.recommender_engine import Recommender
from index.serving.version_loader import load_current, load_recommender
from index.state.live_store import LiveStore
from index.versions.card_table import (
    CARDS,
    COLUMN_FILES,
    CardColumns,
    CardTable,
    write_cards,
)
from index.versions.index_version import NEIGHBOUR_SCORES, NEIGHBOURS, VECTORS
from index.versions.manifest import MANIFEST_NAME, describe_files, read_manifest
from index.versions.record_keys import RECORD_KEYS
from index.versions.text_hashes import TEXT_HASHES
from index.versions.version_store import VersionStore
from recommender.articles import embedding_text, validate_record
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.mapped_files import CSR_PARTS, KeyIndex, LineTable, csr_files, key_hashes
from recommender.ranking import RelatedQuery
from recommender.signals.bm25_share import BM25, BM25_VALUES, Bm25Share
from recommender.signals.tfidf_cosine import (
    IDF,
    LEXICAL,
    VOCABULARY_BEFORE,
    VOCABULARY_FILES,
    TfidfCosine,
    load_vocabulary,
)
from tests.support.helpers import REPO, build_fake_index, synthetic_records

ENCODER = HashingEncoder()
QUERY = RelatedQuery(limit=5)
#: When drafts are written: after every synthetic article.
DRAFTED = 1_711_000_000.0


def mapped_file(array: Any) -> Path | None:
    """The file whose memory map backs `array` (through its chain of views), if any."""
    while array is not None:
        if isinstance(array, np.memmap) and array.filename is not None:
            return Path(array.filename)
        array = getattr(array, "base", None)
    return None


def mapped_paths() -> set[Path]:
    """The files this process has memory-mapped."""
    lines = Path("/proc/self/maps").read_text().splitlines()
    return {Path(line.split(maxsplit=5)[5]) for line in lines if len(line.split(maxsplit=5)) == 6}


def test_a_loaded_version_is_memory_maps_of_its_files(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data")
    version, _ = load_current(settings.index)
    path = version.path
    assert path is not None
    lexical = version.signals[TfidfCosine.name].matrix
    bm25 = version.signals[Bm25Share.name].documents
    columns = version.cards.columns
    backed: dict[str, Any] = {
        VECTORS: version.vectors,
        NEIGHBOURS: version.neighbour_ids,
        NEIGHBOUR_SCORES: version.neighbour_scores,
        "cards.offsets.npy": columns.offsets,
        "cards.slug_hashes.npy": columns.slugs.hashes,
        "cards.slug_rows.npy": columns.slugs.rows,
        "cards.published.npy": version.published,
        "cards.sections.npy": version.sections.codes,
        "cards.languages.npy": version.languages.codes,
        "cards.newest.npy": version.newest_first,
    }
    for name, part in zip(csr_files(LEXICAL)[:3], CSR_PARTS[:3], strict=True):
        backed[name] = getattr(lexical, part)
    # BM25 holds the values of the TF-IDF matrix's entries: its own, over the TF-IDF's indices.
    backed[BM25_VALUES] = bm25.data
    assert np.shares_memory(bm25.indices, lexical.indices)
    assert np.shares_memory(bm25.indptr, lexical.indptr)
    for name, array in backed.items():
        assert mapped_file(array) == path / name, name
        assert not array.flags.writeable, name
    # Every array file, the cards and the FAISS index stay mapped; only small ones are read, the
    # text hashes only by `recommender gc` and the record keys only by the next reindex, never
    # by a worker.
    small = (".json", ".shape.npy")
    expected = {
        path / name
        for name in version.manifest.files
        if not name.endswith(small) and name not in (TEXT_HASHES, RECORD_KEYS)
    }
    assert expected <= mapped_paths()
    assert CARDS in {p.name for p in mapped_paths() if p.parent == path}
    # The vocabulary too: a draft's terms are found through the mapped hashes.
    model = version.signals[TfidfCosine.name].model
    assert mapped_file(model.idf) == path / IDF
    assert model.vocabulary["lava"] == version.signals[TfidfCosine.name].terms.index("lava")
    assert "lava" in model.vocabulary and "basalt" not in model.vocabulary
    recommender, _ = load_recommender(settings.index)
    assert recommender.related("volcano-0", QUERY)
    assert recommender.related_to_draft(ENCODER.encode(["lava ash"])[0], "lava ash", QUERY)


def test_slugs_that_share_a_hash_are_told_apart_by_their_cards() -> None:
    cards = [{"slug": f"story-{i}", "published_at": None} for i in range(6)]
    built = CardTable.of(cards)
    assert built.row_of("story-6") is None and built.rows["story-3"] == 3
    assert list(built.rows) == [card["slug"] for card in cards] and built[-1] == cards[-1]
    with pytest.raises(IndexError):
        built[6]
    # Row 2's slug hashing like row 4's: looking up story-4 finds both, and confirms row 4.
    hashes = key_hashes(f"story-{i}" for i in range(6))
    hashes[2] = hashes[4]
    colliding = dataclasses.replace(built.columns, slugs=KeyIndex.build(hashes))
    table = CardTable(LineTable(b"".join(_lines(cards)), built.columns.offsets), colliding)
    assert colliding.slugs.candidates("story-4") == [2, 4]
    assert table.row_of("story-4") == 4 and table.row_of("story-5") == 5
    # A card whose slug is not its first key is decoded to be compared.
    assert CardTable.of([{"title": "T", "slug": "late"}]).row_of("late") == 0


def _lines(cards: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(card, separators=(",", ":")).encode() + b"\n" for card in cards]


def test_cards_are_written_from_a_stream(tmp_path: Path) -> None:
    records = synthetic_records()
    cards = (validate_record(record).article.card() for record in records)  # a generator
    with (tmp_path / CARDS).open("wb") as handle:
        write_cards(cards, handle).save(tmp_path)
    table = CardTable(
        LineTable((tmp_path / CARDS).read_bytes(), CardColumns.load(tmp_path).offsets),
        CardColumns.load(tmp_path),
    )
    assert [card["slug"] for card in table] == [record["slug"] for record in records]
    assert table.row_of(records[4]["slug"]) == 4


def _as_written_before(data_dir: Path) -> None:
    """Rewrite the current version in the layout written before its files were mapped: cards
    without columns, each CSR matrix in one `.npz`."""
    path = VersionStore(data_dir).current_path()
    manifest = read_manifest(path)
    for name in COLUMN_FILES:
        (path / name).unlink()
    model = load_vocabulary(path)
    terms = list(model.vocabulary)
    vocabulary = {"terms": terms, "idf": model.idf.tolist(), "name_boost": model.name_boost}
    (path / VOCABULARY_BEFORE).write_bytes(orjson.dumps(vocabulary))
    for name in VOCABULARY_FILES:
        (path / name).unlink()
    indices, indptr, shape = (np.load(path / name) for name in csr_files(LEXICAL)[1:])
    for stem in (LEXICAL, BM25):
        data = np.load(path / csr_files(stem)[0])
        matrix = sp.csr_matrix((data, indices, indptr), shape=tuple(shape))
        sp.save_npz(path / f"{stem}.npz", matrix, compressed=False)
    for name in (*csr_files(LEXICAL), BM25_VALUES):
        (path / name).unlink()
    names = [name for name in manifest.files if (path / name).is_file()]
    names += [f"{LEXICAL}.npz", f"{BM25}.npz", VOCABULARY_BEFORE]
    older = dataclasses.replace(manifest, files=describe_files(path, names))
    (path / MANIFEST_NAME).write_text(older.to_json(), encoding="utf-8")


def _answers(recommender: Recommender) -> dict[str, Any]:
    """Every list with its scores and explanations, a draft, an editors' search."""
    answers: dict[str, Any] = {}
    for card in recommender.cards:
        slug = card["slug"]
        suggestions = recommender.related(slug, QUERY, now=DRAFTED)
        row = recommender.row_of(slug)
        answers[slug] = [
            (recommender.card(s.row)["slug"], s.score, recommender.explain(row, s.row))
            for s in suggestions
        ]
    text = "Volcano ash grounds flights over Iceland"
    draft = recommender.related_to_draft(ENCODER.encode([text])[0], text, QUERY, DRAFTED)
    answers["draft"] = [(recommender.card(s.row)["slug"], s.score) for s in draft]
    found = recommender.search("volcano") + recommender.search("")
    answers["search"] = [recommender.card(row)["slug"] for row in found]
    for name, query in {
        "sections": RelatedQuery(limit=5, sections=frozenset({"live desk", "sport"})),
        "language": RelatedQuery(limit=5, language="is"),
        "recent": RelatedQuery(limit=5, max_age_days=10),
    }.items():
        suggestions = recommender.related("volcano-1", query, DRAFTED)
        answers[name] = [recommender.card(s.row)["slug"] for s in suggestions]
    return answers


def test_a_version_in_the_layout_written_before_serves_the_same(tmp_path: Path) -> None:
    records = synthetic_records()
    live = {
        **records[0],
        "slug": "volcano-live",
        "title": "Volcano live: lava reaches the coast",
        "body": records[1]["body"] + " live update coast harbour evacuation",
        "section": "live desk",
        "language": "is",
    }
    settings, _ = build_fake_index(tmp_path / "data", records)
    store = LiveStore.in_directory(settings.data_dir)
    try:
        article = validate_record(live).article
        vector = ENCODER.encode([embedding_text(article)])[0]
        store.upsert(article.slug, live, ENCODER.model_id, vector)
    finally:
        store.close()
    mapped = _answers(load_recommender(settings.index)[0])
    _as_written_before(settings.data_dir)
    version, warning = load_current(settings.index)
    assert warning is None and COLUMN_FILES[0] not in version.manifest.files
    tfidf = version.signals[TfidfCosine.name]
    assert mapped_file(tfidf.matrix.data) is None and isinstance(tfidf.model.vocabulary, dict)
    assert _answers(load_recommender(settings.index)[0]) == mapped
    # The live article is searched, filtered by its own section and language, and scored.
    assert "volcano-live" in mapped["search"] and mapped["language"] == ["volcano-live"]
    assert "volcano-live" in mapped["sections"]
    assert any("volcano-live" in [slug for slug, *_ in mapped[f"volcano-{i}"]] for i in range(3))


#: Loads the version in `argv[1]` as the API does, reads every page of what it serves from, and
#: prints, for each of the version's files it maps, how many bytes are shared and private.
_LOADER = """
import json, sys
from pathlib import Path
import numpy as np
from index.versions.index_version import IndexVersion
from index.versions.version_store import VersionStore
path = Path(sys.argv[1]).resolve()
version = IndexVersion.load(VersionStore(path.parent.parent), path.name, expected_model=None)
columns, tfidf = version.cards.columns, version.signals["lexical"]
arrays = [version.vectors, version.neighbour_ids, version.neighbour_scores, columns.offsets,
          columns.slugs.hashes, columns.slugs.rows, version.published, version.sections.codes,
          version.languages.codes, version.newest_first, tfidf.matrix.data, tfidf.matrix.indices,
          tfidf.matrix.indptr, version.signals["bm25"].documents.data, tfidf.model.idf]
touched = sum(float(np.asarray(array, dtype=np.float64).sum()) for array in arrays)
touched += sum(len(card["slug"]) for card in version.cards) + len(list(tfidf.model.vocabulary))
sizes = {}
name = None
for line in Path("/proc/self/smaps").read_text().splitlines():
    fields = line.split()
    if "-" in fields[0] and not fields[0].endswith(":"):
        mapped = Path(fields[5]) if len(fields) == 6 else None
        name = mapped.name if mapped is not None and mapped.parent == path else None
    elif name and fields[0].startswith(("Shared_", "Private_")):
        kind = "shared" if fields[0].startswith("Shared") else "private"
        entry = sizes.setdefault(name, {"shared": 0, "private": 0})
        entry[kind] += int(fields[1]) * 1024
print(json.dumps(sizes), flush=True)
sys.stdin.read()
"""
#: What the loader reads, every page of it.
READ = [
    VECTORS, NEIGHBOURS, NEIGHBOUR_SCORES, CARDS, *COLUMN_FILES[:-1], *csr_files(LEXICAL)[:3],
    BM25_VALUES, IDF, "vocabulary.jsonl", "vocabulary.offsets.npy",
]  # fmt: skip


def test_two_processes_loading_a_version_share_its_pages(tmp_path: Path) -> None:
    settings, summary = build_fake_index(tmp_path / "data", synthetic_records(per_topic=40))
    path = VersionStore(settings.data_dir).path_of(summary.version)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    measured = []
    processes: list[subprocess.Popen[str]] = []
    try:
        for _ in range(2):  # one after the other: the first holds its pages while the second maps
            process = subprocess.Popen(
                [sys.executable, "-c", _LOADER, str(path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO,
            )
            processes.append(process)
            assert process.stdout is not None
            measured.append(json.loads(process.stdout.readline()))
    finally:
        for process in processes:
            process.communicate("")
    first, second = measured
    for name in READ:
        size = (path / name).stat().st_size
        # Every page the first loader read is its own; the second maps the same pages, shared
        # with the first, and holds none of its own.
        assert first.get(name, {}).get("private", 0) >= size, (name, first.get(name))
        assert second.get(name) == {"shared": first[name]["private"], "private": 0}, name


def test_live_articles_are_merged_into_the_stored_newest_first_order(tmp_path: Path) -> None:
    records = synthetic_records()
    settings, _ = build_fake_index(tmp_path / "data", records)
    store = LiveStore.in_directory(settings.data_dir)
    live = [
        {**records[4], "slug": "live-tie", "published_at": records[4]["published_at"]},
        {**records[5], "slug": "live-undated", "published_at": None},
        {**records[6], "slug": "live-newest", "published_at": "2024-04-01T00:00:00Z"},
        {**records[7], "title": "Replaced by a live upsert"},  # hides its version row
    ]
    try:
        for record in live:
            article = validate_record(record).article
            vector = ENCODER.encode([embedding_text(article)])[0]
            store.upsert(article.slug, record, ENCODER.model_id, vector)
    finally:
        store.close()
    recommender, _ = load_recommender(settings.index)
    served = [row for row in range(len(recommender.cards)) if row not in recommender.overlay.hidden]
    published = np.array([recommender.published[row] for row in served])
    # Newest first, unknown dates last, ties in row order (the version's rows before live ones).
    expected = [
        served[at] for at in np.argsort(-np.nan_to_num(published, nan=-np.inf), kind="stable")
    ]
    assert recommender.search("", limit=len(served)) == expected
    assert recommender.card(expected[0])["slug"] == "live-newest"
    assert recommender.card(expected[-1])["slug"] == "live-undated"


def test_a_card_column_of_another_length_is_refused(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data")
    path = VersionStore(settings.data_dir).current_path()
    np.save(path / "cards.sections.npy", np.zeros(3, np.int32))  # checksummed anew: no damage
    manifest = read_manifest(path)
    rewritten = dataclasses.replace(manifest, files=describe_files(path, list(manifest.files)))
    (path / MANIFEST_NAME).write_text(rewritten.to_json(), encoding="utf-8")
    with pytest.raises(CorruptVersionError, match="disagree on the number of articles"):
        load_current(settings.index)
