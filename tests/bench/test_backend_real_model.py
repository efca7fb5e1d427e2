"""`recommender bench backends` with the packaged model: the README's int8 promise.

Its own module (the longest of the suite), so that xdist can run it beside the fake-model
comparison of tests/bench/test_backend_bench.py instead of after it.
"""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from bench.backend_bench import BackendRow
from console.main import app


@pytest.mark.model
def test_int8_ranks_like_torch_with_the_real_model() -> None:
    """The README's promise, with the packaged model (not the fake, where every backend is one
    encoder): int8 vectors stay close to torch's, and nDCG@5 moves by at most the benchmark's
    bound on BASIL and a NeuS slice."""
    result = CliRunner().invoke(
        app,
        # Ray's column is checked with the fake model (test_backend_bench.py); here it would
        # only add minutes.
        [
            *("bench", "backends", "--backend", "onnx-int8", "--texts", "20", "--neus", "100"),
            *("--no-ray", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    torch_row, int8 = (BackendRow(**row) for row in orjson.loads(result.stdout)["rows"])
    assert (torch_row.backend, int8.backend) == ("torch", "onnx-int8")
    assert int8.cosine_min >= 0.98, int8
    assert set(int8.ndcg_delta) == {"basil", "neus-100"}
    assert all(abs(delta) <= 0.005 for delta in int8.ndcg_delta.values()), int8.ndcg_delta
    assert torch_row.ndcg_at_5["basil"] > 0.5  # the real model, not a degenerate encoder
    assert int8.ray_full_texts_per_second is None  # --no-ray: no Ray instance was started
