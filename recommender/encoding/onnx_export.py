"""ONNX exports of a local sentence-transformers model, made offline once and cached on disk.

The export traces the model's transformer with mean pooling and L2 normalisation into one graph
(`torch.onnx`), and `onnx-int8` then quantises its MatMul weights to int8 per channel with ONNX
Runtime's dynamic quantisation. (sentence-transformers' own ONNX backend needs `optimum`, whose
releases pin transformers below the version this project runs.) Each export lives in its own
directory, `<export_dir>/<weights fingerprint>-<backend>/`, with `model.onnx` and a
`checksum.json` holding its SHA-256; a directory appears whole (built aside, then renamed), so
no process ever sees half a model, and a file that fails its checksum is moved aside and
exported again. Processes that need the same missing export at once (the workers of a host
starting together) take turns on a lock file beside it (`<directory>.lock`): one exports, the
others then find its export.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

from recommender.errors import ModelError

MODEL_FILE = "model.onnx"
CHECKSUM_FILE = "checksum.json"
#: Backends served by an ONNX export, and whether they quantise it.
ONNX_BACKENDS = {"onnx": False, "onnx-int8": True}
_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _uses_mean_pooling(model_path: Path) -> bool:
    """True when the model's pooling module (if any) averages token vectors."""
    configs = sorted(model_path.glob("*Pooling/config.json"))
    if not configs:
        return True
    config = json.loads(configs[0].read_text(encoding="utf-8"))
    return bool(config.get("pooling_mode_mean_tokens", False))


def _export_fp32(model_path: Path, target: Path) -> None:
    import torch
    import transformers

    if not _uses_mean_pooling(model_path):
        raise ModelError(
            f"the ONNX backends support mean-pooling models only; {model_path} pools otherwise "
            "(use RECOMMENDER_ENCODER_BACKEND=torch)"
        )
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    transformer = transformers.AutoModel.from_pretrained(
        str(model_path), local_files_only=True, attn_implementation="eager"
    ).eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer  # a submodule: its weights export as parameters

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = torch.ones(2, 8, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter, not problems
        torch.onnx.export(
            MeanPooled(),
            (sample, sample, torch.zeros_like(sample)),
            str(target),
            input_names=_INPUTS,
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _quantise(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # MatMul weights only, per output channel: 0.99+ cosine to fp32 (all ops: ~0.95).
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process logs to the root logger: noise here
    try:
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            weight_type=QuantType.QInt8,
        )
    finally:
        root.setLevel(level)


def _build(model_path: Path, backend: str, directory: Path) -> None:
    fp32 = directory / ("fp32.onnx" if ONNX_BACKENDS[backend] else MODEL_FILE)
    _export_fp32(model_path, fp32)
    if ONNX_BACKENDS[backend]:
        _quantise(fp32, directory / MODEL_FILE)
        fp32.unlink()
    checksum = {"sha256": _sha256(directory / MODEL_FILE), "backend": backend}
    (directory / CHECKSUM_FILE).write_text(json.dumps(checksum), encoding="utf-8")


def _verified(directory: Path) -> bool:
    try:
        expected = json.loads((directory / CHECKSUM_FILE).read_text(encoding="utf-8"))["sha256"]
        return bool(_sha256(directory / MODEL_FILE) == expected)
    except (OSError, ValueError, KeyError):
        return False


def exported_model(model_path: Path, fingerprint: str, backend: str, export_dir: Path) -> Path:
    """The cached ONNX file of the model at `model_path` for `backend`, exported if missing.

    `fingerprint` identifies the weights (it names the cache directory). Raises ModelError when
    the export fails or the directory cannot be written.
    """
    if backend not in ONNX_BACKENDS:
        raise ModelError(f"{backend!r} is not an ONNX backend ({', '.join(ONNX_BACKENDS)})")
    final = export_dir / f"{fingerprint.replace('/', '-')}-{backend}"
    if _verified(final):
        return final / MODEL_FILE
    try:
        export_dir.mkdir(parents=True, exist_ok=True)
        lock_file = (export_dir / f"{final.name}.lock").open("a")
    except OSError as exc:
        raise ModelError(f"cannot write ONNX exports to {export_dir}: {exc}") from exc
    with lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes or the process dies
        return _export_once(model_path, backend, final)


def _export_once(model_path: Path, backend: str, final: Path) -> Path:
    """Export into `final` unless another process did while this one waited for the lock."""
    if final.is_dir():
        if _verified(final):
            return final / MODEL_FILE
        # Corrupt or half-removed: move it aside (atomically) and export again.
        aside = final.parent / f".corrupt-{uuid.uuid4().hex}"
        final.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=final.parent))
    except OSError as exc:
        raise ModelError(f"cannot write ONNX exports to {final.parent}: {exc}") from exc
    try:
        _build(model_path, backend, staging)
        staging.chmod(0o755)  # mkdtemp makes it private
        os.rename(staging, final)
    except ModelError:
        raise
    except Exception as exc:  # torch.onnx and onnxruntime raise many kinds
        raise ModelError(f"cannot export {model_path} to ONNX ({backend}): {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final / MODEL_FILE
