"""The registered ranking signals, in the order their scores are summed (which fixes how the
sum rounds: a new signal goes last) and fitted (a signal may read the parts of those before)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recommender.ranking import FusionWeights
from recommender.signals.base import Candidates, RankingSignal, Reason, Side, Source, fuse
from recommender.signals.bm25_share import Bm25Share
from recommender.signals.click_through import ClickThrough
from recommender.signals.local_scaling import LocalScaling
from recommender.signals.semantic import SemanticCosine
from recommender.signals.tfidf_cosine import TfidfCosine
from recommender.signals.time_proximity import TimeProximity

SIGNALS: list[RankingSignal] = [
    TfidfCosine(),
    Bm25Share(),
    SemanticCosine(),
    TimeProximity(),
    LocalScaling(),
    ClickThrough(),
]


def register(signal: RankingSignal) -> None:
    """Add a signal after those registered (a plug-in, or a test's)."""
    SIGNALS.append(signal)


def unregister(signal: RankingSignal) -> None:
    SIGNALS.remove(signal)


def fusion_weights(given: Mapping[str, float]) -> FusionWeights:
    """Every registered signal's parameters: those `given` (the settings, or a version's
    manifest), the signals' own values for the rest."""
    defaults = {name: value for s in SIGNALS for name, value in s.parameters.items()}
    return FusionWeights(**{**defaults, **given})


def _combined(
    parts: Mapping[str, Any],
    candidates: Candidates,
    weights: FusionWeights,
    term: Callable[[RankingSignal], NDArray[np.floating[Any]]],
    before: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """The hybrid score: signal by signal in the registry's order, each adding its weighted
    `term` or rescaling the sum so far; only the signals whose parts are given (all of them,
    but while a version is fitted). `before`, when given, is the sum of the signals before the
    first that rescales, already computed: those are not scored again."""
    total: NDArray[np.float32] | None = None
    terms: list[tuple[float, NDArray[np.floating[Any]]]] = []
    for signal in SIGNALS:
        if signal.name not in parts:
            break
        if before is not None and not signal.rescales:
            continue
        if signal.rescales:
            if before is not None:
                total, before = before, None
            else:
                total = fuse(terms) if total is None else fuse([(1.0, total), *terms])
            total, terms = signal.rescale(parts[signal.name], total, candidates, weights), []
        else:
            terms.append((signal.weight(weights), term(signal)))
    if total is None:
        return fuse(terms)
    return fuse([(1.0, total), *terms]) if terms else total


def pair_scores(
    parts: Mapping[str, Any],
    side: Side,
    sources: NDArray[np.int64],
    candidates: Candidates,
    weights: FusionWeights,
    before: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """The hybrid scores of a block of pairs within one version, at reindex
    (`RankingSignal.pairs`); `parts` are the version's signal parts by name (while a version is
    fitted, those fitted so far). `before`: the sum of the signals before the first that
    rescales, where it is known (the fit measured it), so that they are not scored again."""
    return _combined(
        parts,
        candidates,
        weights,
        lambda s: s.pairs(parts[s.name], side, sources, candidates, weights),
        before,
    )


def candidate_scores(
    parts: Mapping[str, Any], source: Source, candidates: Candidates, weights: FusionWeights
) -> NDArray[np.float32]:
    """The hybrid scores of candidates for one source, when serving (`RankingSignal.scores`)."""
    return _combined(
        parts, candidates, weights, lambda s: s.scores(parts[s.name], source, candidates, weights)
    )


def source_queries(
    parts: Mapping[str, Any], features: Mapping[str, Any], row: int
) -> dict[str, Any]:
    """What each signal queries with for the source at `row` of a side with these features."""
    return {s.name: s.query(parts[s.name], features[s.name], row) for s in SIGNALS}


def explanation(
    parts: Mapping[str, Any],
    source: tuple[Side, int],
    target: tuple[Side, int],
    weights: FusionWeights,
) -> dict[str, Any]:
    """Why `target` is suggested for `source`: every signal's entries (`RankingSignal.explain`)."""
    why: dict[str, Any] = {}
    for signal in SIGNALS:
        why.update(signal.explain(parts[signal.name], source, target, weights))
    return why


def reasons(why: Mapping[str, Any]) -> list[Reason]:
    """An explanation (`explanation`) as the editors' page shows it, signal by signal."""
    return [reason for signal in SIGNALS for reason in signal.reasons(why)]
