"""Settings the CLI cannot honour: one line per problem and exit 2, never a traceback, and
nothing written. `--processes` is refused where it would be ignored (an ONNX backend)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.encoding.encoder_protocol import FAKE_MODEL
from tests.support.helpers import REPO

FEED = REPO / "demo" / "articles.jsonl"


def run_cli(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    child_env.update(RECOMMENDER_DATA_DIR=str(data_dir), RECOMMENDER_MODEL=FAKE_MODEL, **env)
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        capture_output=True, text=True, env=child_env, cwd=REPO, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_processes_with_an_onnx_backend_are_refused(tmp_path: Path, backend: str) -> None:
    data_dir = tmp_path / "data"
    result = run_cli(
        "reindex", "--source", str(FEED), "--processes", "2", "--backend", backend,
        data_dir=data_dir,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "--processes" in result.stderr and "--backend torch" in result.stderr
    assert f"backend in effect is {backend}" in result.stderr
    assert not (data_dir / "versions").exists()


def test_the_default_cpu_backend_refuses_processes_from_the_environment(tmp_path: Path) -> None:
    result = run_cli(
        "reindex", "--source", str(FEED), data_dir=tmp_path, RECOMMENDER_ENCODE_PROCESSES="2"
    )
    assert result.returncode == 2 and "onnx-int8" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_an_invalid_environment_value_names_its_variable(tmp_path: Path) -> None:
    result = run_cli("info", data_dir=tmp_path, RECOMMENDER_BATCH_SIZE="0")
    assert result.returncode == 2
    assert result.stderr.startswith("recommender: error: invalid setting: RECOMMENDER_BATCH_SIZE")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
