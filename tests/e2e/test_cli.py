"""The `recommender` CLI end to end, as a scheduler or an operator runs it: real model, real
subprocesses, the bundled demo corpus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import LoggedEvent
from api.serving.click_counts import FILE
from index.versions.version_store import VersionStore
from recommender.settings import Settings
from tests.support.helpers import REPO, SHARED, require_shared, write_jsonl

DEMO = [REPO / "demo" / "articles.jsonl", REPO / "demo" / "putin-victory-alaska-summit.txt"]
CLI = [sys.executable, "-m", "console"]

pytestmark = pytest.mark.model


def run_cli(
    *args: str | Path, data_dir: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECOMMENDER_DATA_DIR": str(data_dir)}
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def sources(*paths: Path) -> list[str]:
    return [arg for path in paths for arg in ("--source", str(path))]


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """The demo corpus indexed once with the real model; tests copy it before changing it."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    result = run_cli("reindex", *sources(*DEMO), data_dir=data_dir)
    return data_dir, json.loads(result.stdout)


@pytest.fixture
def data_dir(demo_data: tuple[Path, dict[str, object]], tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(demo_data[0], copy)
    return copy


@pytest.fixture(scope="session")
def two_versions(
    demo_data: tuple[Path, dict[str, object]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, str]:
    """The demo corpus's version, then a second one with one more article (no need to embed the
    other 301 again), built once: (data dir, first version, second version)."""
    root = tmp_path_factory.mktemp("two-versions")
    data_dir = shutil.copytree(demo_data[0], root / "data")
    first = VersionStore(data_dir).current_id()
    extra = write_jsonl(
        root / "extra.jsonl", [{"slug": "new-story", "title": "Alaska summit aftermath"}]
    )
    run_cli("reindex", *sources(*DEMO, extra), data_dir=data_dir)
    second = VersionStore(data_dir).current_id()
    assert second != first
    return data_dir, first, second


@pytest.fixture
def two_version_dir(two_versions: tuple[Path, str, str], tmp_path: Path) -> tuple[Path, str, str]:
    """A copy of `two_versions`'s data dir, the second version served."""
    template, first, second = two_versions
    return shutil.copytree(template, tmp_path / "two-versions"), first, second


def test_reindex_prints_the_summary_line(demo_data: tuple[Path, dict[str, object]]) -> None:
    _, summary = demo_data
    assert summary["read"] == 301 and summary["bad"] == 0 and summary["indexed"] == 301
    assert summary["embedded"] == 301 and summary["reused"] == 0
    assert isinstance(summary["seconds"], float)


def test_reindex_again_embeds_nothing(data_dir: Path) -> None:
    summary = json.loads(run_cli("reindex", *sources(*DEMO), data_dir=data_dir).stdout)
    assert summary["embedded"] == 0 and summary["reused"] == 301


def test_reindex_recounts_the_readers_clicks_for_the_workers(data_dir: Path) -> None:
    shown = LoggedEvent(
        "impression", time.time(), "allsides-5612-left", "box-0000000000000001", 1,
        "allsides-5612-center", "default", "default", "v1", 1.0,
    )  # fmt: skip
    FileEventLog(data_dir).write([shown, replace(shown, type="click", propensity=None)])
    result = run_cli("reindex", *sources(*DEMO), data_dir=data_dir)
    assert f"click counts: 2 events of the impression log in {data_dir / FILE}" in result.stderr
    counts = json.loads((data_dir / FILE).read_text())
    assert counts["events"] == 2 and counts["pairs"][0][:2] == [shown.source, shown.target]


def test_related_shows_same_story_coverage_first(data_dir: Path) -> None:
    result = run_cli("related", "allsides-5612-left", "--json", "--limit", "2", data_dir=data_dir)
    body = json.loads(result.stdout)
    assert {item["slug"] for item in body["items"]} == {
        "allsides-5612-center",
        "allsides-5612-right",
    }


def test_related_json_is_the_http_body_without_the_feedback_token(data_dir: Path) -> None:
    cli = json.loads(
        run_cli("related", "putin-victory-alaska-summit", "--json", data_dir=data_dir).stdout
    )
    with TestClient(create_app(Settings(data_dir=data_dir, redis_url=None))) as client:
        http = client.get("/v1/articles/putin-victory-alaska-summit/related").json()
    assert http.pop("feedback")["arm"] == "default"
    assert cli == http
    assert len(cli["items"]) == 5


def test_info_and_versions(data_dir: Path) -> None:
    info = json.loads(run_cli("info", "--json", data_dir=data_dir).stdout)
    assert (
        info["articles"] == 301 and info["model"] == "all-MiniLM-L6-v2" and info["dimension"] == 384
    )
    listing = run_cli("versions", data_dir=data_dir).stdout
    assert listing.startswith("* " + info["version"])


def test_a_corrupted_index_is_refused_and_the_previous_version_still_served(
    data_dir: Path, two_version_dir: tuple[Path, str, str]
) -> None:
    # What the first version serves alone (the demo corpus's data dir, that version only).
    before = run_cli("related", "putin-victory-alaska-summit", "--json", data_dir=data_dir).stdout
    data_dir, first, second = two_version_dir
    index_file = data_dir / "versions" / second / "index.faiss"
    index_file.write_bytes(index_file.read_bytes()[: index_file.stat().st_size // 2])

    result = run_cli("related", "putin-victory-alaska-summit", "--json", data_dir=data_dir)
    assert "index.faiss is" in result.stderr and f"serving {first}" in result.stderr
    assert json.loads(result.stdout) == json.loads(before)
    refused = run_cli("rollback", "--to", second, data_dir=data_dir, check=False)
    assert refused.returncode == 3 and "recommender: error:" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_rollback_flips_current_back(two_version_dir: tuple[Path, str, str]) -> None:
    data_dir, first, second = two_version_dir
    assert VersionStore(data_dir).current_id() == second
    assert run_cli("rollback", data_dir=data_dir).stdout.strip() == f"now serving {first}"
    assert VersionStore(data_dir).current_id() == first


def test_strict_mode_exits_2_and_publishes_nothing(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"slug": "ok", "title": "Fine"}\n{"slug": "Bad Slug!", "title": "x"}\n')
    result = run_cli("reindex", "--strict", "--source", feed, data_dir=tmp_path / "d", check=False)
    assert result.returncode == 2
    assert f"{feed}:2:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "d" / "CURRENT").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["related", "anything"], 3, "no index has been published"),
        (["reindex", "--source", "/nonexistent/feed.jsonl"], 2, "/nonexistent/feed.jsonl"),
        (["rollback"], 3, "no index has been published"),
    ],
)
def test_errors_are_one_line_and_a_documented_exit_code(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = run_cli(*args, data_dir=tmp_path / "empty", check=False)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_slug_exits_4(data_dir: Path) -> None:
    result = run_cli("related", "no-such-story", data_dir=data_dir, check=False)
    assert result.returncode == 4 and "no article with slug 'no-such-story'" in result.stderr


def test_help_shows_examples() -> None:
    for command in ([], ["reindex"], ["related"], ["serve"], ["rollback"]):
        result = subprocess.run(
            [*CLI, *command, "--help"], capture_output=True, text=True, cwd=REPO
        )
        assert result.returncode == 0
        if command:
            assert "Examples:" in result.stdout


def test_reindex_reads_the_shared_sample_article_and_full_embeds_it_again(tmp_path: Path) -> None:
    """`--full` re-embeds what the cache holds (shown on one article: the flag reaches the
    pipeline; tests/index/test_pipeline.py shows what a full run does)."""
    sample = require_shared(SHARED / "samples" / "article.txt")
    result = run_cli("reindex", "--source", sample, data_dir=tmp_path / "d")
    assert json.loads(result.stdout)["indexed"] == 1
    card = json.loads(run_cli("info", "--json", data_dir=tmp_path / "d").stdout)
    assert card["articles"] == 1
    full = json.loads(
        run_cli("reindex", "--full", "--source", sample, data_dir=tmp_path / "d").stdout
    )
    assert full["embedded"] == 1 and full["reused"] == 0


def test_export_neighbours_writes_every_list_as_the_api_would(data_dir: Path) -> None:
    out = data_dir.parent / "related.jsonl"
    run_cli("export-neighbours", "--limit", "3", "--output", out, data_dir=data_dir)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 301
    assert all(len(line["items"]) == 3 for line in lines)
    by_slug = {line["slug"]: line for line in lines}
    single = run_cli(
        "related", "putin-victory-alaska-summit", "--json", "--limit", "3", data_dir=data_dir
    )
    assert by_slug["putin-victory-alaska-summit"] == json.loads(single.stdout)
