"""The shared version store: reindex publishes there, replicas follow its CURRENT.

The store is fsspec's `file://` in a directory of its own (what a shared filesystem looks
like) and, where one process is enough, `memory://`: the same calls on both backends.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from index.index_errors import CorruptVersionError, ReindexLocked, RemoteStoreError, VersionNotFound
from index.serving.version_loader import load_current
from index.versions.card_table import CARDS
from index.versions.manifest import MANIFEST_NAME
from index.versions.reindex_lock import reindex_lock
from index.versions.remote_store import RemoteStore
from index.versions.replica_sync import ReplicaSync, pull_current
from index.versions.version_store import VersionStore
from recommender.settings import Settings
from tests.support.helpers import build_fake_index, fake_settings, synthetic_records


@pytest.fixture(params=["file", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "file":
        yield (tmp_path / "shared-store").as_uri()
        return
    url = f"memory://recommender-test-{uuid.uuid4().hex}"
    yield url
    fs, root = fsspec.core.url_to_fs(url)
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture
def file_store(tmp_path: Path) -> Path:
    return tmp_path / "shared-store"


def publish(data_dir: Path, store_url: str, revision: int = 0, **overrides: object) -> str:
    """Reindex a revision of the synthetic corpus into `data_dir` with the store set."""
    records = synthetic_records()
    records[0]["title"] = f"Volcano headline revision {revision}"
    _, summary = build_fake_index(data_dir, records, store_url=store_url, **overrides)
    return summary.version


def replica(tmp_path: Path, store_url: str, name: str = "replica") -> Settings:
    return fake_settings(tmp_path / name, store_url=store_url)


def test_reindex_publishes_to_the_store_and_a_replica_serves_the_same_version(
    tmp_path: Path, store_url: str
) -> None:
    version = publish(tmp_path / "builder", store_url)
    remote = RemoteStore(store_url)
    assert remote.current_id() == version
    assert remote.version_ids() == [version]

    settings = replica(tmp_path, store_url)
    assert pull_current(settings.index, remote) == version
    assert pull_current(settings.index, remote) is None  # already in step
    served, warning = load_current(settings.index)
    assert (served.id, warning) == (version, None)
    built, _ = load_current(fake_settings(tmp_path / "builder").index)
    assert list(served.cards) == list(built.cards)


def test_a_new_version_replaces_the_old_one_and_a_rollback_travels_too(
    tmp_path: Path, store_url: str
) -> None:
    first = publish(tmp_path / "builder", store_url, revision=0)
    settings = replica(tmp_path, store_url)
    remote = RemoteStore(store_url)
    pull_current(settings.index, remote)
    second = publish(tmp_path / "builder", store_url, revision=1)
    assert pull_current(settings.index, remote) == second
    assert load_current(settings.index)[0].cards[0]["title"] == "Volcano headline revision 1"

    builder = VersionStore(tmp_path / "builder")
    remote.publish(builder, builder.rollback(), keep=5)
    assert pull_current(settings.index, remote) == first
    assert VersionStore(settings.data_dir).version_ids() == [first, second]


def test_an_unchanged_reindex_still_publishes_to_a_store_that_lacks_the_version(
    tmp_path: Path, store_url: str
) -> None:
    _, built = build_fake_index(tmp_path / "builder")  # no store configured yet
    _, again = build_fake_index(tmp_path / "builder", store_url=store_url)
    assert (again.version, again.published) == (built.version, False)
    assert RemoteStore(store_url).current_id() == built.version


def test_the_store_keeps_only_the_newest_versions(tmp_path: Path, store_url: str) -> None:
    ids = [publish(tmp_path / "builder", store_url, revision=n, keep_versions=2) for n in range(3)]
    assert RemoteStore(store_url).version_ids() == ids[1:]


def test_a_damaged_download_never_becomes_a_version(tmp_path: Path, file_store: Path) -> None:
    url = file_store.as_uri()
    version = publish(tmp_path / "builder", url)
    cards = file_store / "versions" / version / CARDS
    data = bytearray(cards.read_bytes())
    data[10] ^= 0xFF  # same size, other bytes
    cards.write_bytes(bytes(data))

    settings = replica(tmp_path, url)
    with pytest.raises(CorruptVersionError, match="checksum"):
        pull_current(settings.index, RemoteStore(url))
    assert list((settings.data_dir / "versions").iterdir()) == []  # not even a staging dir
    assert not (settings.data_dir / "CURRENT").exists()


def test_a_version_missing_a_file_is_refused(tmp_path: Path, file_store: Path) -> None:
    url = file_store.as_uri()
    version = publish(tmp_path / "builder", url)
    (file_store / "versions" / version / CARDS).unlink()
    with pytest.raises(CorruptVersionError, match=CARDS):
        pull_current(replica(tmp_path, url).index, RemoteStore(url))


def test_a_manifest_naming_a_path_outside_the_version_is_refused(
    tmp_path: Path, file_store: Path
) -> None:
    url = file_store.as_uri()
    version = publish(tmp_path / "builder", url)
    manifest_path = file_store / "versions" / version / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../../escaped"] = manifest["files"].pop(CARDS)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptVersionError, match="bad file name"):
        pull_current(replica(tmp_path, url).index, RemoteStore(url))
    assert not (tmp_path / "escaped").exists()


def test_an_interrupted_upload_is_done_again(tmp_path: Path, file_store: Path) -> None:
    url = file_store.as_uri()
    version = publish(tmp_path / "builder", url)
    (file_store / "versions" / version / MANIFEST_NAME).unlink()  # as if killed before the end
    (file_store / "CURRENT").unlink()
    (file_store / "versions" / version / CARDS).write_bytes(b"half a file")
    RemoteStore(url).publish(VersionStore(tmp_path / "builder"), version, keep=5)
    assert pull_current(replica(tmp_path, url).index, RemoteStore(url)) == version


def test_a_current_naming_a_version_the_store_lacks_is_refused(
    tmp_path: Path, file_store: Path
) -> None:
    url = file_store.as_uri()
    publish(tmp_path / "builder", url)
    (file_store / "CURRENT").write_text("20990101T000000000Z-abcdef\n")
    with pytest.raises(VersionNotFound):
        pull_current(replica(tmp_path, url).index, RemoteStore(url))


def test_an_empty_store_leaves_the_replica_alone(tmp_path: Path, store_url: str) -> None:
    settings = replica(tmp_path, store_url)
    assert pull_current(settings.index, RemoteStore(store_url)) is None
    assert not (settings.data_dir / "CURRENT").exists()


def test_processes_of_one_host_take_turns(tmp_path: Path, store_url: str) -> None:
    publish(tmp_path / "builder", store_url)
    settings = replica(tmp_path, store_url)
    with reindex_lock(settings.data_dir), pytest.raises(ReindexLocked):
        pull_current(settings.index, RemoteStore(store_url))
    assert not (settings.data_dir / "CURRENT").exists()


def test_an_unknown_store_scheme_stops_reindex_before_it_publishes(tmp_path: Path) -> None:
    with pytest.raises(RemoteStoreError, match="nosuch://"):
        build_fake_index(tmp_path / "builder", store_url="nosuch://bucket/prefix")
    assert not (tmp_path / "builder" / "CURRENT").exists()


def test_replica_sync_keeps_serving_and_logs_a_failing_store_once(
    tmp_path: Path, file_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = file_store.as_uri()
    version = publish(tmp_path / "builder", url)
    settings = replica(tmp_path, url)
    sync = ReplicaSync(settings.index, url)
    sync.pull()
    caplog.set_level(logging.INFO, logger="index.versions.replica_sync")
    (file_store / "CURRENT").write_text("not a version id\n")
    sync.pull()
    sync.pull()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not a version id" in warnings[0].getMessage()
    assert VersionStore(settings.data_dir).current_id() == version

    newer = publish(tmp_path / "builder", url, revision=1)
    sync.pull()
    assert VersionStore(settings.data_dir).current_id() == newer
    assert any("answers again" in r.getMessage() for r in caplog.records)
