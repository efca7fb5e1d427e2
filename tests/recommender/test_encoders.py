"""Embeddings with the real packaged model, and the deterministic fake."""

from __future__ import annotations

import gc
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from recommender.encoding.encoder_factory import load_encoder
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.encoding.model_files import resolve_model_path
from recommender.encoding.sentence_transformer_encoder import SentenceTransformerEncoder
from recommender.errors import ModelError
from recommender.settings import Settings


@pytest.fixture(scope="module")
def encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder("all-MiniLM-L6-v2")


@pytest.mark.model
def test_a_paraphrase_scores_above_an_unrelated_article(
    encoder: SentenceTransformerEncoder,
) -> None:
    source, paraphrase, unrelated = encoder.encode(
        [
            "Putin claims victory after Alaska summit with Trump; no ceasefire agreed.",
            "Russian president declares diplomatic win following meeting with US leader in Alaska.",
            "Local bakery wins award for best sourdough bread in the county fair.",
        ]
    )
    assert float(source @ paraphrase) > float(source @ unrelated) + 0.3


@pytest.mark.model
def test_vectors_are_unit_length_float32_of_the_model_dimension(
    encoder: SentenceTransformerEncoder,
) -> None:
    vectors = encoder.encode(["one", "two words", ""])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.dimension == 384
    assert encoder.model_id.startswith("all-MiniLM-L6-v2@")
    assert encoder.model_id.endswith("/seq256")


@pytest.mark.model
def test_encoding_is_deterministic_and_batch_independent(
    encoder: SentenceTransformerEncoder,
) -> None:
    texts = ["Markets fall on rate fears", "Storm closes schools across the region"]
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


@pytest.mark.model
def test_the_torch_backend_with_processes_embeds_in_that_many_workers(
    encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    """`--processes 2` (RECOMMENDER_ENCODE_PROCESSES) is honoured, not silently ignored: the
    encoder the settings build embeds in two worker processes of its own, with the in-process
    vectors, and stops them with itself."""
    texts = [f"Story {n}: storm closes schools, markets fall on rate fears" for n in range(40)]
    settings = Settings(data_dir=tmp_path, encoder_backend="torch", encode_processes=2)
    before = set(multiprocessing.active_children())
    pooled = load_encoder(settings.encoder)
    vectors = pooled.encode(texts)
    workers = set(multiprocessing.active_children()) - before
    assert len(workers) == 2, workers
    np.testing.assert_allclose(vectors, encoder.encode(texts), atol=1e-5)
    del pooled
    gc.collect()
    assert not workers & set(multiprocessing.active_children()), "the workers outlived it"


def test_the_model_id_changes_with_the_sequence_length() -> None:
    short = SentenceTransformerEncoder("all-MiniLM-L6-v2", max_seq_length=128)
    assert short.model_id.endswith("/seq128")  # no model is loaded just to know its id


def test_an_unknown_model_is_refused_without_downloading(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="never downloaded"):
        resolve_model_path("sentence-transformers/some-other-model")
    with pytest.raises(ModelError, match="never downloaded"):
        load_encoder(Settings(model=str(tmp_path)).encoder)


def test_the_packaged_model_is_found_on_disk() -> None:
    path = resolve_model_path("all-MiniLM-L6-v2")
    assert (path / "model.safetensors").is_file()


def test_the_hashing_encoder_groups_texts_by_shared_words() -> None:
    vectors = HashingEncoder().encode(
        ["volcano lava ash eruption", "lava eruption near the volcano", "bitcoin price miners"]
    )
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
    assert np.array_equal(
        vectors,
        HashingEncoder().encode(
            ["volcano lava ash eruption", "lava eruption near the volcano", "bitcoin price miners"]
        ),
    )
