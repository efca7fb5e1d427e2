"""The block stages on a real, bounded local Ray instance (2 CPUs): the analyse and neighbours
stages on Ray build the very files of the local engine, results come back in block order with
the blocks read only a few ahead, and a worker killed in a block publishes nothing (in process
and through the CLI: exit 69, one line)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.index_errors import ClusterError
from index.versions.block_executor import LOCAL, BlockJob
from index.versions.compact_catalog import SCRATCH_DIR, BlockSizes
from index.versions.manifest import read_manifest
from index.versions.ray_blocks import IN_FLIGHT_PER_ACTOR, RayBlocks
from index.versions.reindex_pipeline import reindex
from index.versions.vector_index import IndexSpec, VectorIndex
from index.versions.version_store import STAGING_PREFIX, VersionStore
from recommender import fault_points
from recommender.encoding.encoder_protocol import FAKE_MODEL
from recommender.encoding.hashing_encoder import HashingEncoder
from tests.support.helpers import (
    REPO,
    build_in_blocks,
    fake_settings,
    synthetic_records,
    write_jsonl,
)
from tests.support.local_ray import require_ray

ray = require_ray()

#: Several blocks in every block stage: 2 analyse chunks (256 texts), 12 of neighbours.
RECORDS = synthetic_records(per_topic=60)
BLOCKS = BlockSizes(rows=32, spill_memory=1)
GROWN = [
    *synthetic_records(),
    {**synthetic_records()[1], "slug": "volcano-next", "title": "Volcano: the next day"},
]


def _double(offset: int, block: list[int]) -> list[int]:
    return [2 * value + offset for value in block]


def _refuse(offset: int, block: list[int]) -> list[int]:
    raise ValueError(f"block {block} refused")


def test_a_catalog_built_on_ray_is_byte_identical_to_the_local_build(
    local_ray: None, tmp_path: Path
) -> None:
    assert len(RECORDS) > 256  # two analyse chunks; 12 blocks of neighbours
    built = {
        engine: build_in_blocks(tmp_path / engine, RECORDS, BLOCKS, encode_engine=engine)
        for engine in ("local", "ray")
    }
    files = {
        engine: read_manifest(VersionStore(settings.data_dir).current_path()).files
        for engine, (settings, _) in built.items()
    }
    # every file's size and SHA-256: vectors, index, neighbours, scores, lexical rows, cards
    assert files["ray"] == files["local"]
    written = {"neighbours.npy", "neighbour_scores.npy", "lexical.data.npy", "cards.jsonl"}
    assert written <= set(files["ray"])
    engines = {
        engine: {stage["stage"]: stage["engine"] for stage in summary.stages}
        for engine, (_, summary) in built.items()
    }
    assert set(engines["local"].values()) == {"local"}
    # the hashing encoder embedded here: only the block stages ran on Ray
    assert [stage for stage, where in engines["ray"].items() if where == "ray"] == [
        "analyse",
        "neighbours",
    ]


def test_ray_gives_results_in_block_order_reading_blocks_a_few_ahead(local_ray: None) -> None:
    executor = RayBlocks(address=None)
    taken: list[int] = []

    def blocks() -> Iterator[list[int]]:
        for number in range(40):
            taken.append(number)
            yield list(range(number * 3, number * 3 + 3))

    job = BlockJob("test", 1, _double)
    results = executor.map(job, blocks())
    first = next(results)
    # two actors: what the driver holds is bounded by the blocks in flight, not the input
    assert len(taken) <= 2 * IN_FLIGHT_PER_ACTOR + 1
    assert [first, *results] == list(LOCAL.map(job, blocks()))
    assert len(taken) == 80


def test_an_error_of_a_block_on_ray_is_raised_as_it_is_locally(local_ray: None) -> None:
    with pytest.raises(ValueError, match=r"^block \[0\] refused$") as raised:
        list(RayBlocks(address=None).map(BlockJob("test", 0, _refuse), [[0], [1]]))
    assert type(raised.value) is ValueError  # not Ray's wrapper of it


def test_a_pickled_index_searches_as_the_original_its_bytes_out_of_band() -> None:
    vectors = np.random.default_rng(1).standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for spec in (IndexSpec("flat"), IndexSpec("hnsw", ef_search=16)):
        index = VectorIndex.build(vectors, spec)
        buffers: list[pickle.PickleBuffer] = []
        pickled = pickle.dumps(index, protocol=5, buffer_callback=buffers.append)
        # the vectors travel as one buffer (Ray's object store holds it once, in place), not
        # copied into the pickle as faiss's own pickling does
        assert len(pickled) < 1000 and sum(b.raw().nbytes for b in buffers) > vectors.nbytes
        copy = pickle.loads(pickled, buffers=buffers)
        assert copy.spec == index.spec
        for got, expected in zip(copy.search(vectors, 10), index.search(vectors, 10), strict=True):
            np.testing.assert_array_equal(got, expected)


def served_then_grown(tmp_path: Path) -> tuple[Path, str, Path]:
    """A data dir serving the synthetic corpus (built locally), and a feed with one more article."""
    settings, first = build_in_blocks(tmp_path / "data", None, BLOCKS)
    return settings.data_dir, first.version, write_jsonl(tmp_path / "next.jsonl", GROWN)


def assert_untouched(data_dir: Path, version: str) -> None:
    store = VersionStore(data_dir)
    assert store.current_id() == version and store.version_ids() == [version]
    assert not any((data_dir / "versions").glob(f"{STAGING_PREFIX}*"))


@pytest.mark.parametrize(
    ("feed_records", "stage"),
    [(GROWN, "analyse"), (synthetic_records()[:-1], "neighbours")],
    ids=["a new text: analyse", "an article gone, nothing to analyse: neighbours"],
)
def test_a_worker_killed_during_a_block_publishes_nothing(
    local_ray: None, tmp_path: Path, feed_records: list[dict[str, Any]], stage: str
) -> None:
    data_dir, before, _ = served_then_grown(tmp_path)
    feed = write_jsonl(tmp_path / "changed.jsonl", feed_records)
    # a full rebuild (any drift): an incremental run computes its few lists in the driver
    on_ray = fake_settings(data_dir, encode_engine="ray", incremental_drift_max=0).index
    fault_points.arm("ray-worker-block")  # the workers arm the driver's point
    try:
        with pytest.raises(ClusterError, match=f"^the {stage} stage on Ray lost block 1: "):
            reindex(on_ray, [feed], HashingEncoder(), blocks=BLOCKS)
    finally:
        fault_points.arm(None)
    assert_untouched(data_dir, before)
    # the next run completes (on Ray) and serves the changed catalog
    again = reindex(on_ray, [feed], HashingEncoder(), blocks=BLOCKS)
    assert again.published and again.indexed == len(feed_records) and again.embedded == 0
    assert not (data_dir / SCRATCH_DIR).exists()


def test_the_cli_exits_69_in_one_line_when_a_ray_worker_dies_in_a_block(tmp_path: Path) -> None:
    data_dir, before, feed = served_then_grown(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    env.update(
        RECOMMENDER_MODEL=FAKE_MODEL,
        RECOMMENDER_DATA_DIR=str(data_dir),
        RECOMMENDER_FAULT_POINT="ray-worker-block",
    )
    completed = subprocess.run(
        [sys.executable, "-m", "console", "reindex", "--source", str(feed), "--engine", "ray"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 69, completed.stderr
    [error] = [line for line in completed.stderr.splitlines() if "error:" in line]
    assert error.startswith("recommender: error: the analyse stage on Ray lost block 1: ")
    assert "nothing was published and the served version is untouched" in error
    # no summary line (Ray's own notice of the dead worker may be there: its driver prints it)
    assert "Traceback" not in completed.stderr and '"version"' not in completed.stdout
    assert_untouched(data_dir, before)
    without_fault = {k: v for k, v in env.items() if k != "RECOMMENDER_FAULT_POINT"}
    summary = json.loads(
        subprocess.run(
            [sys.executable, "-m", "console", "reindex", "--source", str(feed)],
            cwd=REPO, env=without_fault, capture_output=True,
            text=True, check=True, timeout=300,
        ).stdout
    )  # fmt: skip
    assert summary["published"] and summary["embedded"] == 0  # embedded by the killed run
