"""Whether a reindex rebuilds in full or reuses the served version (issue 30, point 2).

An incremental run keeps the lexical statistics (TF-IDF vocabulary and idf, BM25 idf and
average length) of the last full fit, reuses the served version's rows and neighbour lists of the
articles that did not change, and recomputes only what the changed ones affect
(`index.versions.incremental_neighbours`). Its output drifts from a full rebuild's as document
frequencies move, so `plan_rebuild` bounds the drift and falls back to a full rebuild when:

- this is the first run, or `--full` was given;
- the served version records no lexical fit (built before this existed) or its text hashes are
  unreadable;
- the model, the ranking parameters, the signals or the list length changed (`build_key`);
- the last full fit is older than `RECOMMENDER_FULL_REBUILD_DAYS`;
- the drift would pass `RECOMMENDER_INCREMENTAL_DRIFT_MAX`.

**Drift** is the number of articles changed, added or removed since the last full fit (summed
over the incremental runs since, so an article edited twice counts twice), as a share of the
catalog fitted then. Each such article moves a term's document frequency by at most one, so the
drift bounds every term's document-frequency change relative to the catalog (and with it how far
its idf moved), it needs nothing but counts, and it reads the same to an operator as "the share
of the catalog that changed since the last full rebuild".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
from numpy.typing import NDArray

from index.versions.card_table import CardTable, published_time
from index.versions.manifest import Manifest
from index.versions.text_hashes import read_text_table
from recommender.settings import IndexSettings
from recommender.signals.base import updatable
from recommender.signals.registry import SIGNALS, fusion_weights

Rebuild = Literal["full", "incremental"]
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class LexicalFit:
    """The manifest's `lexical_fit`: what a version's lexical statistics were fitted from."""

    version: str
    """The version whose build fitted them on its whole catalog."""
    fitted_at: str
    """When (ISO 8601, UTC)."""
    count: int
    """Articles in the catalog then."""
    changed: int
    """Articles changed, added or removed since (each incremental run adds its own)."""
    build: str
    """`build_key` of that fit: what else than the texts the statistics and lists depend on."""

    @property
    def drift(self) -> float:
        return self.changed / max(self.count, 1)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drift": round(self.drift, 6)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LexicalFit:
        return cls(
            str(data["version"]),
            str(data["fitted_at"]),
            int(data["count"]),
            int(data["changed"]),
            str(data["build"]),
        )


@dataclass(frozen=True, slots=True)
class Reuse:
    """What an incremental run takes from the served version."""

    version: str
    reused: NDArray[np.int64]
    """By row of the new catalog: the served version's row whose article is unchanged (same
    slug, texts and publication time), or -1 where the article is new or changed."""
    successor: NDArray[np.int64]
    """By row of the served version: the new catalog's row of the same slug (kept or changed),
    or -1 where the article was removed."""
    changed: int
    added: int
    removed: int


@dataclass(frozen=True, slots=True)
class RebuildPlan:
    rebuild: Rebuild
    reason: str
    fit: LexicalFit
    """The new version's `lexical_fit` (`version` and `fitted_at` of a full fit are this run's:
    `for_version`)."""
    reuse: Reuse | None
    """With `rebuild == "incremental"`."""

    def to_analyse(self, lexical_hashes: Sequence[str]) -> list[str]:
        """The lexical texts (hashes) this run weighs: all in a full run, the new and changed
        ones in an incremental one."""
        if self.reuse is None:
            return list(lexical_hashes)
        return [lexical_hashes[row] for row in np.flatnonzero(self.reuse.reused < 0).tolist()]

    def for_version(self, version: str) -> dict[str, Any]:
        """The `lexical_fit` of the version this run writes as `version`."""
        if self.rebuild == "full":
            return replace(self.fit, version=version).to_dict()
        return self.fit.to_dict()


def build_key(settings: IndexSettings, model_id: str) -> str:
    """A digest of what a fit and its neighbour lists depend on besides the texts."""
    key = {
        "model_id": model_id,
        "neighbours": settings.neighbours,
        "ranking": dict(fusion_weights(settings.fusion)),
        "signals": [signal.name for signal in SIGNALS],
    }
    return hashlib.sha256(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()


def plan_rebuild(
    settings: IndexSettings,
    served: tuple[Path, Manifest] | None,
    cards: Sequence[dict[str, Any]],
    embedding_hashes: Sequence[str],
    lexical_hashes: Sequence[str],
    *,
    model_id: str,
    full: bool,
) -> RebuildPlan:
    """Full or incremental, and why, for a catalog of `cards` (with their texts' hashes) that
    is to replace the `served` version (its directory and manifest); see the module."""
    key = build_key(settings, model_id)
    fresh = LexicalFit("", datetime.now(UTC).isoformat(), len(cards), 0, key)

    def rebuild_full(reason: str) -> RebuildPlan:
        return RebuildPlan("full", reason, fresh, None)

    if served is None:
        return rebuild_full("first run: no version is served")
    if full:
        return rebuild_full("--full was given")
    directory, manifest = served
    if manifest.lexical_fit is None:
        return rebuild_full(f"the served version {manifest.version} records no lexical fit")
    fit = LexicalFit.from_dict(manifest.lexical_fit)
    if fit.build != key:
        return rebuild_full("the model, the ranking parameters or the signals changed")
    if not all(updatable(signal) for signal in SIGNALS):
        return rebuild_full("a registered signal cannot update its part incrementally")
    age_days = (datetime.now(UTC) - datetime.fromisoformat(fit.fitted_at)).total_seconds()
    age_days /= SECONDS_PER_DAY
    if age_days >= settings.full_rebuild_days:
        return rebuild_full(
            f"the last full fit ({fit.version}) is {age_days:.1f} days old, "
            f"RECOMMENDER_FULL_REBUILD_DAYS is {settings.full_rebuild_days:g}"
        )
    table = read_text_table(directory, manifest)
    if table is None or len(table) != manifest.count:
        return rebuild_full(f"the served version {manifest.version} has no readable text hashes")
    reuse = match_catalog(
        CardTable.load(directory, with_columns=True),
        table,
        cards,
        embedding_hashes,
        lexical_hashes,
        manifest.version,
    )
    moved = replace(fit, changed=fit.changed + reuse.changed + reuse.added + reuse.removed)
    if moved.drift > settings.incremental_drift_max:
        return rebuild_full(
            f"drift {moved.drift:.4f} since the last full fit ({fit.version}) is above "
            f"RECOMMENDER_INCREMENTAL_DRIFT_MAX {settings.incremental_drift_max:g}"
        )
    return RebuildPlan(
        "incremental",
        f"{reuse.changed} changed, {reuse.added} added, {reuse.removed} removed; drift "
        f"{moved.drift:.4f} since the last full fit ({fit.version})",
        moved,
        reuse,
    )


def match_catalog(
    served_cards: CardTable,
    served_texts: NDArray[np.uint8],
    cards: Sequence[dict[str, Any]],
    embedding_hashes: Sequence[str],
    lexical_hashes: Sequence[str],
    version: str,
) -> Reuse:
    """Each new article's served row by slug, kept where its texts (`served_texts`, the
    version's `text_hashes.npy` table) and publication time are the same."""
    count = len(cards)
    old_rows = np.full(count, -1, dtype=np.int64)
    published = np.empty(count, dtype=np.float64)
    for row, card in enumerate(cards):
        old = served_cards.row_of(card["slug"])
        old_rows[row] = -1 if old is None else old
        published[row] = published_time(card)
    found = np.flatnonzero(old_rows >= 0)
    served = old_rows[found]
    texts = np.stack([_digests(embedding_hashes), _digests(lexical_hashes)], axis=1)
    same_texts = (texts[found] == served_texts[served]).all(axis=(1, 2))
    served_published = served_cards.columns.published[served]
    same_time = (published[found] == served_published) | (
        np.isnan(published[found]) & np.isnan(served_published)
    )
    reused = np.full(count, -1, dtype=np.int64)
    kept = same_texts & same_time
    reused[found[kept]] = served[kept]
    successor = np.full(len(served_cards), -1, dtype=np.int64)
    successor[served] = found
    changed, added = int(np.count_nonzero(~kept)), count - len(found)
    removed = int(np.count_nonzero(successor < 0))
    return Reuse(version, reused, successor, changed, added, removed)


def _digests(hashes: Sequence[str]) -> NDArray[np.uint8]:
    """Hex SHA-256 digests as rows of raw bytes (as `text_hashes.npy` holds them)."""
    raw = bytes.fromhex("".join(hashes))
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(hashes), 32)
