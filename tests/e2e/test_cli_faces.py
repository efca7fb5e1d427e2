"""What a person reads from the CLI: its version, word placeholders in --help, `info`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer._click.core import Command, Context
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from api.app import create_app
from console.main import app
from index.state.state_stores import open_stores
from tests.support.helpers import REPO, build_fake_index

COMMANDS = ["reindex", "related", "info", "versions", "rollback", "evaluate", "serve"]


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and re.fullmatch(r"recommender \d+\.\d+\.\d+\n", result.stdout)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_placeholders_are_words(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    options = [line for line in result.stdout.splitlines() if line.lstrip().startswith("-")]
    assert options
    for line in options:
        assert not re.search(r"<(int|str|path|float|list)[^>]*>", line), line
        assert not re.search(r"\b(INTEGER|TEXT|FLOAT|PATH RANGE)\b", line), line


def every_command() -> list[list[str]]:
    """The path of every command and group, the root (no path) included."""
    paths: list[list[str]] = []

    def walk(command: Command, path: list[str]) -> None:
        paths.append(path)
        if isinstance(command, TyperGroup):  # its commands may load on use: ask for them
            context = Context(command)
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None
                walk(sub, [*path, name])

    walk(get_command(app), [])
    return paths


def help_text(path: list[str], width: int) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=width)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("width", [40, 80])
def test_help_never_breaks_a_word_and_keeps_each_example_on_one_line(width: int) -> None:
    for path in every_command():
        whole = help_text(path, 10_000)
        words = set(whole.split())
        for word in help_text(path, width).split():
            # A command's one-line summary may be cut after a word, marked "...".
            shortened = word.endswith("...") and any(w.startswith(word[:-3]) for w in words)
            assert word in words or shortened, f"`recommender {' '.join(path)} --help`: {word!r}"
        examples = [line for line in whole.splitlines() if line.startswith("  recommender ")]
        narrow = help_text(path, width).splitlines()
        assert all(line in narrow for line in examples), path


def test_info_is_a_readable_summary_with_only_its_index_kinds_parameters(tmp_path: Path) -> None:
    settings, summary = build_fake_index(tmp_path / "data")
    env = {"RECOMMENDER_DATA_DIR": str(settings.data_dir)}
    text = CliRunner().invoke(app, ["info"], env=env)
    assert text.exit_code == 0
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in text.stdout.splitlines())
    assert lines["Version"] == summary.version and lines["Articles"] == "18"
    assert lines["Search"] == "flat (exact)"
    assert "hnsw" not in text.stdout.lower() and "ef_search" not in text.stdout
    card = json.loads(CliRunner().invoke(app, ["info", "--json"], env=env).stdout)
    assert card["index"] == {"kind": "flat"} and card["version"] == summary.version


def test_info_describes_an_ivf_index_by_its_lists_and_nprobe(tmp_path: Path) -> None:
    records = [{"slug": f"doc-{i}", "title": f"story {i} about w{i % 7}"} for i in range(120)]
    settings, _ = build_fake_index(tmp_path / "data", records, exact_search_max=10, ann_index="ivf")
    env = {"RECOMMENDER_DATA_DIR": str(settings.data_dir)}
    card = json.loads(CliRunner().invoke(app, ["info", "--json"], env=env).stdout)
    index = card["index"]
    assert set(index) == {"kind", "ivf_lists", "ivf_probe"} and index["kind"] == "ivf"
    assert index["ivf_lists"] == 3 and 1 <= index["ivf_probe"] <= 3
    text = CliRunner().invoke(app, ["info"], env=env)
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in text.stdout.splitlines())
    assert lines["Search"] == f"IVF (approximate): nlist 3, nprobe {index['ivf_probe']}"
    assert "hnsw" not in text.stdout.lower()


def test_related_applies_the_editors_pins_and_blocks_like_the_api(tmp_path: Path) -> None:
    settings, _ = build_fake_index(tmp_path / "data", redis_url=None)
    env = {
        "RECOMMENDER_DATA_DIR": str(settings.data_dir),
        "RECOMMENDER_MODEL": settings.encoder.model,
    }

    def related(*args: str) -> list[str]:
        result = CliRunner().invoke(app, ["related", "volcano-0", "--json", *args], env=env)
        assert result.exit_code == 0, result.output
        return [item["slug"] for item in json.loads(result.stdout)["items"]]

    before = related()
    stores = open_stores(settings.index)
    try:
        stores.curation.pin("volcano-0", "bitcoin-1", 1, None, None, "ana")
        stores.curation.block("volcano-0", before[0], None, "ana")
        stores.curation.block(None, before[1], "legal hold", "ana")
    finally:
        stores.close()
    shown = related()
    assert shown[0] == "bitcoin-1" and not {before[0], before[1]} & set(shown)
    with TestClient(create_app(settings)) as client:
        api = client.get("/v1/articles/volcano-0/related").json()
    assert shown == [item["slug"] for item in api["items"]]


def test_the_console_script_imports_no_benchmark_or_heavy_library_until_needed() -> None:
    code = (
        "import sys, console.main\n"
        "heavy = ('trafilatura', 'feedparser', 'httpx', 'torch', 'faiss', 'ray', 'bench.api_bench',"
        " 'bench.soak', 'bench.ingest_bench', 'recommender.ingest.feeds')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert loaded.stdout.strip() == ""
    listed = subprocess.run(
        [sys.executable, "-m", "console", "bench", "ingest", "--help"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    assert "recommender bench ingest" in listed.stdout
