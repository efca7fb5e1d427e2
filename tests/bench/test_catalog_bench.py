"""`recommender bench catalog`: the synthetic catalog, exact search, and a tiny run of it all.

Nothing here is timed; sizes are tiny, and the HNSW and IVF paths are reached by lowering the
exact-search threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from bench.catalog_bench import (
    CatalogResult,
    NeighbourPlan,
    clustered_vectors,
    exact_top_k,
    recall,
    run_benchmark,
    table_rows,
)
from console.main import app
from index.versions.vector_index import ivf_lists_for
from recommender.encoding.encoder_protocol import normalise_rows


def test_the_catalog_is_seeded_unit_vectors_around_shared_centres() -> None:
    catalog = clustered_vectors(2000, centres=20, seed=3)
    assert catalog.shape == (2000, 384) and catalog.dtype == np.float32
    assert np.allclose(np.linalg.norm(catalog, axis=1), 1.0, atol=1e-5)
    assert (clustered_vectors(2000, centres=20, seed=3) == catalog).all()
    queries = clustered_vectors(50, centres=20, seed=3, stream=1)
    assert not (queries == catalog[:50]).all()
    # held-out queries lie in the catalog's clusters: close neighbours exist; random ones do not
    nearest = (queries @ catalog.T).max(axis=1)
    random = normalise_rows(np.random.default_rng(0).standard_normal((50, 384)))
    assert nearest.min() > 0.4 > (random @ catalog.T).max()


def test_exact_search_over_blocks_finds_the_true_top_k() -> None:
    vectors = clustered_vectors(700, centres=10, seed=1)
    queries = clustered_vectors(30, centres=10, seed=1, stream=1)
    truth = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
    found = exact_top_k(vectors, queries, 10, block=256)  # three blocks, the last one short
    assert recall(truth, found) == pytest.approx(1.0)


def test_recall_is_the_share_of_true_ids_found() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert recall(truth, np.array([[4, 3, 9, 9], [5, 6, 7, 8]])) == 0.75
    assert recall(truth, np.full((2, 4), -1)) == 0.0


def test_a_tiny_hnsw_catalog_is_built_loaded_searched_and_checked(tmp_path: Path) -> None:
    result = run_benchmark(
        size=600, centres=12, queries=40, seed=0, exact_search_max=100, work_dir=tmp_path,
        say=lambda _: None,
    )  # fmt: skip
    assert result.index["kind"] == "hnsw" and result.index["ef_search"] >= 128
    # Tuning raises efSearch until recall@10 on indexed rows reaches 0.98; held-out queries from
    # the same clusters come close (this seeded catalog gives 1.0).
    assert result.tuned_recall >= 0.98 and result.recall_at_10 >= 0.9, result
    assert 0 < result.p50_ms <= result.p99_ms
    assert result.build_peak_gb > 0 and result.index_gb > 0 and result.vectors_gb > 0
    assert result.build_seconds >= result.tune_seconds >= 0 and result.load_seconds >= 0
    rows = table_rows(result)
    assert all(len(row) == 3 for row in rows) and "HNSW (approximate): M 32" in rows[1][1]
    assert result.neighbour_rows == 0 and not any("neighbour" in row[0] for row in rows)


def test_a_tiny_ivf_catalog_with_its_neighbour_search_timed(tmp_path: Path) -> None:
    result = run_benchmark(
        size=3000, centres=30, queries=40, seed=0, exact_search_max=100, work_dir=tmp_path,
        ann_index="ivf", neighbours=NeighbourPlan(rows=500, k=16), say=lambda _: None,
    )  # fmt: skip
    lists = ivf_lists_for(3000)
    assert result.index["kind"] == "ivf" and result.index["ivf_lists"] == lists
    assert 1 <= result.index["ivf_probe"] <= lists and "ef_search" not in result.index
    assert result.tuned_recall >= 0.98 and result.recall_at_10 >= 0.9, result
    assert (result.neighbour_rows, result.neighbour_k) == (500, 16)
    assert result.neighbour_seconds_per_1000 > 0
    assert result.neighbour_seconds_extrapolated == pytest.approx(
        result.neighbour_seconds_per_1000 * 3, rel=0.01, abs=0.01
    )
    rows = table_rows(result)
    assert rows[1][1] == f"IVF (approximate): nlist {lists}, nprobe {result.index['ivf_probe']}"
    assert rows[-2][0] == "neighbour search s / 1,000 rows (vectors only, 16 kept, 500 sampled)"
    assert rows[-2][1] == f"{result.neighbour_seconds_per_1000:.3f}"
    assert rows[-1][:2] == [
        "neighbour search s, all rows (extrapolated from 500)",
        f"{result.neighbour_seconds_extrapolated:,.1f}",
    ]


def test_the_command_prints_json_for_a_flat_catalog() -> None:
    result = CliRunner().invoke(
        app, ["bench", "catalog", "--size", "200", "--centres", "5", "--queries", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = CatalogResult(**orjson.loads(result.stdout)["result"])
    assert report.index["kind"] == "flat" and report.recall_at_10 == 1.0
    assert table_rows(report)[1][1] == "flat (exact)"


@pytest.mark.parametrize(
    ("option", "env"),
    [
        (["--index", "ivf"], {"RECOMMENDER_ANN_INDEX": "hnsw"}),
        ([], {"RECOMMENDER_ANN_INDEX": "ivf"}),
    ],
    ids=["option", "setting"],
)
def test_the_command_builds_ivf_with_its_options_and_times_neighbours(
    option: list[str], env: dict[str, str]
) -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "catalog", "--size", "1500", "--centres", "15", "--queries", "10", *option,
         "--ivf-lists", "20", "--neighbours", "200", "--json"],
        env={"RECOMMENDER_EXACT_SEARCH_MAX": "100", "RECOMMENDER_NEIGHBOURS": "8", **env},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = CatalogResult(**orjson.loads(result.stdout)["result"])
    assert report.index["kind"] == "ivf" and report.index["ivf_lists"] == 20
    assert report.tuned_recall >= 0.98
    assert (report.neighbour_rows, report.neighbour_k) == (200, 8)
    assert report.neighbour_seconds_per_1000 > 0


def test_the_command_builds_hnsw_with_the_settings_ef_construction() -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "catalog", "--size", "300", "--centres", "5", "--queries", "5", "--json"],
        env={"RECOMMENDER_EXACT_SEARCH_MAX": "100", "RECOMMENDER_HNSW_EF_CONSTRUCTION": "24",
             "RECOMMENDER_ANN_INDEX": "hnsw"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = CatalogResult(**orjson.loads(result.stdout)["result"])
    assert report.index["kind"] == "hnsw" and report.index["ef_construction"] == 24


def test_a_catalog_of_perturbed_copies_of_real_vectors(tmp_path: Path) -> None:
    base = tmp_path / "vectors.npy"
    real = normalise_rows(np.random.default_rng(7).standard_normal((40, 384)).astype(np.float32))
    np.save(base, real)
    copies = clustered_vectors(500, centres=1, seed=2, base=base, spread=0.5)
    nearest_base = (copies @ real.T).max(axis=1)
    assert copies.shape == (500, 384) and nearest_base.min() > 0.85  # each near its original
    result = run_benchmark(
        size=500, centres=1, queries=20, seed=2, exact_search_max=100, work_dir=tmp_path,
        ef_construction=40, base=base, spread=0.5, say=lambda _: None,
    )  # fmt: skip
    assert result.centres == 40 and result.index["ef_construction"] == 40
    assert result.recall_at_10 >= 0.9


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--index", "ivf", "--ef-construction", "40"], "--ef-construction applies to HNSW"),
        (["--index", "hnsw", "--ivf-lists", "20"], "--ivf-lists applies to IVF"),
    ],
)
def test_an_option_of_the_other_index_kind_is_refused(options: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["bench", "catalog", "--size", "300", *options])
    assert result.exit_code == 2 and message in result.output
