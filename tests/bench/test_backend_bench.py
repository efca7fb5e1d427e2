"""`recommender bench backends`, run end to end with the fake model (every backend then gives
the same vectors, so the comparison itself is what is checked); with the packaged model in
tests/bench/test_backend_real_model.py."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from bench.backend_bench import BackendRow, table_rows
from console.main import app
from recommender.encoding.encoder_protocol import FAKE_MODEL


def bench_rows(*args: str) -> list[BackendRow]:
    """`recommender bench backends ... --json` with the fake model (20 texts, 30 NeuS)."""
    result = CliRunner().invoke(
        app, ["bench", "backends", "--texts", "20", "--neus", "30", *args, "--json"]
    )
    assert result.exit_code == 0, result.output
    return [BackendRow(**row) for row in orjson.loads(result.stdout)["rows"]]


def test_each_backend_is_compared_with_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOMMENDER_MODEL", FAKE_MODEL)  # for every spawned process
    rows = bench_rows("--no-ray")
    assert [row.backend for row in rows] == ["torch", "onnx", "onnx-int8"]
    for row in rows:
        assert row.cosine_mean == row.cosine_min == 1.0
        assert set(row.ndcg_delta) == {"basil", "neus-30"} and set(row.ndcg_delta.values()) == {0}
        assert row.full_over_torch_encode > 0 and row.ray_full_texts_per_second is None


def test_a_backend_is_timed_on_ray_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """One backend: with the fake model every backend is the same hashing encoder, so a Ray run
    per backend would repeat this one (each is a Ray instance started, ~20 s)."""
    monkeypatch.setenv("RECOMMENDER_MODEL", FAKE_MODEL)
    (row,) = bench_rows("--backend", "torch")
    assert row.backend == "torch" and (row.ray_full_texts_per_second or 0) > 0


def test_the_table_judges_int8_speed_and_every_ndcg_delta() -> None:
    def row(backend: str, full: float, delta: float) -> BackendRow:
        return BackendRow(backend, 10.0, full, full / 10.0, 0.99, 0.98,
                          {"basil": 0.9}, {"basil": delta})  # fmt: skip

    text = "\n".join(
        " | ".join(r) for r in table_rows([row("torch", 9.0, 0.0), row("onnx-int8", 14.0, -0.006)])
    )
    assert "onnx-int8: full reindex / raw torch encode | 1.400 | >= 1.5: NOT met" in text
    assert "|delta| <= 0.005: NOT met" in text
    assert "torch: cosine" not in text
