"""Version store: atomic publishing, rollback, pruning, and refusal of damaged versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.index_errors import CorruptVersionError, NoIndexError, VersionNotFound
from index.serving.version_loader import load_current
from index.versions.version_store import VersionStore
from tests.support.helpers import build_fake_index, synthetic_records


def _three_versions(data_dir: Path) -> list[str]:
    records = synthetic_records()
    ids = []
    for n in range(3):
        records[0]["title"] = f"Volcano headline revision {n}"
        _, summary = build_fake_index(data_dir, records)
        ids.append(summary.version)
    return ids


def test_nothing_published_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NoIndexError, match="recommender reindex"):
        VersionStore(tmp_path).current_id()


def test_versions_are_listed_oldest_first_with_the_current_marked(tmp_path: Path) -> None:
    ids = _three_versions(tmp_path / "data")
    infos = VersionStore(tmp_path / "data").list_versions()
    assert [i.id for i in infos] == ids
    assert [i.current for i in infos] == [False, False, True]


def test_rollback_goes_to_the_previous_version_then_further(tmp_path: Path) -> None:
    ids = _three_versions(tmp_path / "data")
    store = VersionStore(tmp_path / "data")
    assert store.rollback() == ids[1]
    assert store.rollback() == ids[0]
    with pytest.raises(VersionNotFound):
        store.rollback()
    assert store.rollback(to=ids[2]) == ids[2]


def test_rollback_to_an_unknown_or_malformed_id_is_refused(tmp_path: Path) -> None:
    _three_versions(tmp_path / "data")
    store = VersionStore(tmp_path / "data")
    with pytest.raises(VersionNotFound):
        store.rollback(to="../../etc")
    with pytest.raises(VersionNotFound):
        store.rollback(to="20990101T000000Z-abcdef")


def test_prune_keeps_the_newest_and_never_the_current(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ids = _three_versions(data)
    store = VersionStore(data)
    store.rollback(to=ids[0])
    assert store.prune(keep=1) == [ids[1]]
    assert store.version_ids() == [ids[0], ids[2]]


def test_keep_versions_setting_bounds_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    records = synthetic_records()
    for n in range(4):
        records[0]["title"] = f"rev {n}"
        build_fake_index(data, records, keep_versions=2)
    assert len(VersionStore(data).version_ids()) == 2


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "delete"])
def test_a_damaged_file_is_refused_and_not_published(tmp_path: Path, damage: str) -> None:
    data = tmp_path / "data"
    ids = _three_versions(data)
    target = data / "versions" / ids[1] / "vectors.npy"
    if damage == "flip_byte":
        raw = bytearray(target.read_bytes())
        raw[-1] ^= 0xFF
        target.write_bytes(bytes(raw))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    else:
        target.unlink()
    store = VersionStore(data)
    with pytest.raises(CorruptVersionError, match=ids[1]):
        store.verified(ids[1])
    with pytest.raises(CorruptVersionError):
        store.rollback(to=ids[1])
    assert store.current_id() == ids[2]
    # rolling back without a target skips the damaged version
    assert store.rollback() == ids[0]


def test_loading_a_corrupt_current_version_fails_clearly(tmp_path: Path) -> None:
    settings, summary = build_fake_index(tmp_path / "data")
    (settings.data_dir / "versions" / summary.version / "manifest.json").write_text("{oops")
    with pytest.raises(CorruptVersionError, match=r"manifest\.json is unreadable"):
        load_current(settings.index)


def test_a_version_built_for_another_model_is_refused(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data")
    other = settings.replaced(**{"model": "all-MiniLM-L6-v2"})
    with pytest.raises(CorruptVersionError, match="built with model 'fake-hashing'"):
        load_current(other.index)


def test_a_failed_build_leaves_no_staging_directory(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    with pytest.raises(RuntimeError), store.staging() as staging:
        (staging / "partial").write_text("x")
        raise RuntimeError("disk full")
    assert list((tmp_path / "versions").iterdir()) == []
