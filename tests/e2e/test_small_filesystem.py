"""A data directory on a real, small filesystem (a tmpfs mounted for the test) that fills up:
the nightly run is refused before it embeds, a live change answers 503 `store_unavailable`
while reads go on, `/readyz` and the status page warn, and once space is freed everything works
again. Mounting needs root, as the suite runs in CI; elsewhere the test fails saying so."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from index.versions.version_store import VersionStore
from tests.api.test_editor_pages import log_in
from tests.e2e.test_reindex_interrupted import CLI, big_feed, served_titles, staging_exists
from tests.support.helpers import ADMIN_TOKEN, REPO, build_fake_index, slugs

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "correct horse"


@contextmanager
def small_filesystem(path: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of `megabytes` mounted at `path` for the block, unmounted after."""
    if os.geteuid() != 0:
        pytest.fail(
            "this test mounts a small tmpfs and needs root: run it as root (CI does), or the "
            "whole pytest run under `unshare --user --map-root-user --mount`",
            pytrace=False,
        )
    path.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def fill(directory: Path, leave: int = 0) -> Path:
    """A filler file taking all of the filesystem's free space but `leave` bytes."""
    filler = directory / "filler"
    block = b"\0" * (64 * 1024)
    with filler.open("wb") as handle, suppress(OSError):
        while os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize > leave:
            room = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize - leave
            handle.write(block[: max(4096, min(len(block), room))])
            handle.flush()
    return filler


def reindex_cli(feed: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RECOMMENDER_MODEL": "fake-hashing",
        "RECOMMENDER_DATA_DIR": str(data_dir),
        "RECOMMENDER_DISK_RESERVE_MB": "1",
    }
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [*CLI, "reindex", "--source", str(feed)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def embedding_rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "embeddings.sqlite3") as database:
        ((count,),) = database.execute("SELECT count(*) FROM embeddings").fetchall()
    return int(count)


def disk_warnings(client: TestClient) -> list[str]:
    """The low-disk warnings of `/readyz` (Redis unset adds one of its own)."""
    warnings: list[str] = client.get("/readyz").json()["warnings"]
    return [warning for warning in warnings if warning.startswith("low disk space")]


def test_a_nightly_run_without_room_is_refused_before_it_embeds(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "disk", 24) as disk:
        data_dir = disk / "data"
        first = reindex_cli(big_feed(tmp_path / "small.jsonl", 100), data_dir)
        assert first.returncode == 0, first.stderr
        served = served_titles(data_dir)
        store = VersionStore(data_dir)
        versions, rows = store.version_ids(), embedding_rows(data_dir)
        filler = fill(disk, leave=1536 * 1024)  # room for a little more than the reserve

        refused = reindex_cli(big_feed(tmp_path / "big.jsonl", 3000, revision=1), data_dir)
        assert refused.returncode == 65, refused.stderr
        line = refused.stderr.splitlines()[0]
        assert line.startswith("recommender: error: not enough free space for this build")
        assert str(data_dir) in line and "bytes free" in line and "needed" in line
        assert "Traceback" not in refused.stderr and refused.stdout == ""
        assert store.version_ids() == versions and served_titles(data_dir) == served
        assert embedding_rows(data_dir) == rows  # refused before embedding anything
        assert not staging_exists(data_dir)

        filler.unlink()
        again = reindex_cli(tmp_path / "big.jsonl", data_dir)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["indexed"] == 3000


def test_live_writes_on_a_full_disk_answer_503_and_reads_go_on(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "disk", 16) as disk:
        data_dir = disk / "data"
        settings, _ = build_fake_index(
            data_dir,
            admin_token=ADMIN_TOKEN,
            editor_password=PASSWORD,
            redis_url=None,
            disk_warn_mb=8,
            disk_reserve_mb=1,
        )
        article = {"title": "Volcano ash grounds flights", "body": "lava ash " * 20_000}
        with TestClient(create_app(settings), follow_redirects=False) as client:
            assert not disk_warnings(client)
            assert (
                client.put("/v1/articles/before-full", json=article, headers=AUTH).status_code
                == 200
            )
            csrf = log_in(client, password=PASSWORD)
            filler = fill(disk)
            with pytest.raises(OSError) as full:
                (disk / "probe").write_bytes(b"x" * 65536)
            assert full.value.errno == errno.ENOSPC

            refused = client.put("/v1/articles/volcano-new", json=article, headers=AUTH)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "store_unavailable"
            assert refused.headers["Retry-After"] == "1"
            assert (
                "is full" in refused.json()["detail"] and str(data_dir) in refused.json()["detail"]
            )
            # Nothing half-written: the article is not served, and reads go on.
            assert client.get("/v1/articles/volcano-new").status_code == 404
            assert slugs(client.get("/v1/articles/volcano-0/related"))
            assert client.get("/v1/articles/before-full").status_code == 200
            ready = client.get("/readyz")
            assert ready.status_code == 200
            (warning,) = disk_warnings(client)
            assert str(data_dir) in warning and "bytes free" in warning
            status = client.get("/editor/status")
            assert status.status_code == 200 and "low disk space" in status.text
            form = {"target": "volcano-2", "slot": "1", "csrf": csrf, "confirmed": "true"}
            pin = client.post("/editor/articles/volcano-0/pins", data=form)
            assert pin.status_code == 503 and pin.headers["Retry-After"] == "1"
            assert pin.headers["content-type"].startswith("text/html")
            assert 'data-error="store_unavailable"' in pin.text and "is full" in pin.text

            filler.unlink()
            stored = client.put("/v1/articles/volcano-new", json=article, headers=AUTH)
            assert stored.status_code == 200, stored.text
            assert client.get("/v1/articles/volcano-new").status_code == 200
            assert not disk_warnings(client)
