"""A version stores its unchanged files once: a file identical to the served version's is a
hard link to it, and checksums, rollback, pruning and a replica's copy all still work."""

from __future__ import annotations

from pathlib import Path

from index.serving.version_loader import load_current
from index.versions.manifest import read_manifest
from index.versions.reindex_pipeline import reindex
from index.versions.remote_store import RemoteStore
from index.versions.replica_sync import pull_current
from index.versions.version_store import VersionStore
from recommender.encoding.hashing_encoder import HashingEncoder
from tests.support.helpers import fake_settings, synthetic_records, write_jsonl


def _inode(path: Path) -> int:
    return path.stat().st_ino


def test_two_versions_of_the_same_vectors_share_their_identical_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = fake_settings(data_dir, keep_versions=5)
    records = synthetic_records()
    first = reindex(settings.index, [write_jsonl(tmp_path / "a.jsonl", records)], HashingEncoder())
    # The same texts at new URLs: the cards change, the vectors and the index do not.
    moved = [{**r, "url": f"https://news.example/{r['slug']}"} for r in records]
    second = reindex(settings.index, [write_jsonl(tmp_path / "b.jsonl", moved)], HashingEncoder())
    assert second.published and second.embedded == 0
    store = VersionStore(data_dir)
    old, new = store.path_of(first.version), store.path_of(second.version)
    old_files, new_files = read_manifest(old).files, read_manifest(new).files
    same = {name for name, entry in new_files.items() if old_files.get(name) == entry}
    assert {"vectors.npy", "index.faiss", "text_hashes.npy"} <= same
    assert "cards.jsonl" not in same
    for name in new_files:
        shared = _inode(new / name) == _inode(old / name)
        assert shared == (name in same), name
    assert (new / "vectors.npy").stat().st_nlink == 2
    assert not list(new.glob(".*"))  # no link left half-made

    store.verified(second.version)
    assert store.rollback() == first.version
    version, warning = load_current(settings.index)
    assert warning is None and version.id == first.version
    store.publish(second.version)
    assert store.prune(1) == [first.version]
    store.verified(second.version)  # its linked files outlived the version they came from
    assert (new / "vectors.npy").stat().st_nlink == 1
    version, _ = load_current(settings.index)
    assert version.id == second.version and version.cards[0]["url"].startswith("https://news")


def test_a_replica_copies_linked_files_and_links_its_own(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    settings = fake_settings(tmp_path / "job", keep_versions=5, store_url=shared.as_uri())
    records = synthetic_records()
    reindex(settings.index, [write_jsonl(tmp_path / "a.jsonl", records)], HashingEncoder())
    replica = fake_settings(tmp_path / "replica", store_url=shared.as_uri())
    remote = RemoteStore(shared.as_uri())
    first = pull_current(replica.index, remote)
    moved = [{**r, "url": f"https://news.example/{r['slug']}"} for r in records]
    reindex(settings.index, [write_jsonl(tmp_path / "b.jsonl", moved)], HashingEncoder())
    second = pull_current(replica.index, remote)
    assert first is not None and second is not None and first != second
    local = VersionStore(tmp_path / "replica")
    local.verified(second)
    assert _inode(local.path_of(second) / "vectors.npy") == _inode(
        local.path_of(first) / "vectors.npy"
    )
