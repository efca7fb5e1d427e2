"""An incremental reindex's build (`index.versions.incremental_plan` decides when): the served
version's signal parts and neighbour lists carried over, work done only where the change reaches.

- **Statistics** stay those of the last full fit: each signal's `update` keeps the served rows
  of unchanged articles and weighs only the new and changed ones (terms never seen get appended
  to the vocabulary). So an unchanged pair scores exactly as it did.
- **Lists of new and changed articles** are computed as a full build does: their candidate pool
  from the vector index, re-scored with the hybrid score.
- **Lists they enter**: each new or changed article is a candidate of the articles nearest to it
  (`ENTERING_REACH` pools wide) whose own candidate pool it is in (counted against its nearest,
  `_in_pool`), and enters a list where it beats the list's last score.
- **Lists that held a changed article** re-score that pair and re-sort; **lists that held a
  removed article** drop it, leaving a gap at the end (a list of 64 loses about one entry per
  1 % of the catalog removed). A list with more than an eighth of its entries missing is
  recomputed in full, as are all lists when the catalog is too small to fill them.

What this leaves out, the price of not recomputing every list: an article entering a list whose
pool it is in but which is beyond its own wider search, an article let into a pool by a removal,
and the entry past a list's end that a removed or demoted one would let in.
`recommender bench chain` measures the result against a full rebuild (overlap@5, nDCG@5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from index.versions.incremental_plan import Reuse
from index.versions.index_version import IndexVersion, VersionContent, publication_times
from index.versions.neighbours import (
    POOL_FACTOR,
    candidate_batches,
    pool_scorer,
    rank_by_fusion,
)
from index.versions.reindex_stages import StageMeter
from index.versions.vector_index import VectorIndex, build_tuned
from index.versions.version_store import VersionStore
from recommender import fault_points
from recommender.ranking import FusionWeights
from recommender.settings import IndexSettings
from recommender.signals.base import Candidates, CatalogChange, Side
from recommender.signals.registry import SIGNALS, pair_scores
from recommender.tfidf import CatalogTerms

#: A list missing more than this share of its entries is recomputed in full.
MISSING_MAX = 1 / 8

#: How much wider than its own candidate pool a new or changed article looks for the lists it
#: enters: an article near it need not be in its pool while it is in that article's, and the
#: wider the search, the fewer such lists it misses.
ENTERING_REACH = 4

Lists = tuple[NDArray[np.int32], NDArray[np.float32]]


def build_incremental(
    cards: Sequence[dict[str, Any]],
    vectors: NDArray[np.float32],
    lexical_hashes: Sequence[str],
    settings: IndexSettings,
    store: VersionStore,
    reuse: Reuse,
    analysed: Callable[[Sequence[str]], CatalogTerms],
    *,
    meter: StageMeter,
    block: int,
) -> tuple[VersionContent, float, FusionWeights]:
    """`build_content` of an incremental run: the index over every vector, the signal parts and
    neighbour lists updated from the served version `reuse.version` (see the module);
    `analysed` gives the stored analyses of lexical texts by hash. Same stages, same fault
    points, same result shape."""
    with meter.stage("index"):
        index, recall = build_tuned(vectors, settings)
    fault_points.reached("reindex-indexed")
    with meter.stage("fit"):
        served = IndexVersion.load(store, reuse.version, expected_model=None)
        published = publication_times(cards)
        weighed = np.flatnonzero(reuse.reused < 0)
        weights = served.weights  # measured on the catalog of the last full fit, like the idf
        change = CatalogChange(
            reuse.reused,
            analysed([lexical_hashes[row] for row in weighed.tolist()]),
            block,
            pool_scorer(index, vectors, published, settings.neighbours),
            weights,
        )
        parts: dict[str, Any] = {}
        for signal in SIGNALS:  # in order: a signal may build on the parts of those before it
            parts[signal.name] = signal.update(served.signals[signal.name], change, parts)
    fault_points.reached("reindex-fitted")
    with meter.stage("neighbours"):
        side = Side(vectors, published, {s.name: s.rows(parts[s.name]) for s in SIGNALS})
        ids, scores = update_neighbours(
            index,
            side,
            parts,
            weights,
            settings.neighbours,
            (served.neighbour_ids, served.neighbour_scores),
            reuse,
            block,
        )
    fault_points.reached("reindex-neighboured")
    return VersionContent(cards, vectors, index, ids, scores, parts), recall, weights


def update_neighbours(
    index: VectorIndex,
    side: Side,
    parts: Mapping[str, Any],
    weights: FusionWeights,
    k: int,
    served: Lists,
    reuse: Reuse,
    block: int,
) -> Lists:
    """The k best other rows of every row of `side` (as `precompute_neighbours`), from the
    `served` lists of the reused rows and new scores where the change reaches (the module)."""
    count = len(side.vectors)
    width = max(1, min(k, count - 1))
    ids = np.full((count, width), -1, dtype=np.int32)
    scores = np.full((count, width), -np.inf, dtype=np.float32)
    kept = np.flatnonzero(reuse.reused >= 0)
    targets, kept_scores = _carried_lists(served, reuse, kept, width)
    # Entries whose article is unchanged keep their score: same rows, same statistics.
    unchanged = targets >= 0
    unchanged[unchanged] = reuse.reused[targets[unchanged]] >= 0
    ids[kept] = np.where(unchanged, targets, -1)
    scores[kept] = np.where(unchanged, kept_scores, -np.inf)
    missing = np.count_nonzero(ids[kept] < 0, axis=1)
    refit = np.zeros(count, dtype=np.bool_)
    refit[reuse.reused < 0] = True
    refit[kept[missing > width * MISSING_MAX]] = True
    # Changed articles stay in the lists that held them, at their new score.
    held = (targets >= 0) & ~unchanged
    sources = kept[np.nonzero(held)[0]]
    entries = [(sources, targets[held], _scores_of(side, parts, weights, sources, targets[held]))]
    # What an article must beat to enter a list: its last score, or nothing where it has room.
    floor = np.where((ids < 0).any(axis=1), -np.inf, scores[:, -1]).astype(np.float32)
    full_rows = np.flatnonzero(refit)
    for rows, pool_ids, pool_scores in candidate_batches(
        index, side.vectors[full_rows], full_rows, width, block
    ):
        fused = pair_scores(parts, side, rows, Candidates(side, pool_ids, pool_scores), weights)
        best_ids, best_scores = rank_by_fusion(pool_ids, fused, width)
        ids[rows, : best_ids.shape[1]] = best_ids
        scores[rows, : best_scores.shape[1]] = best_scores
    weighed = np.flatnonzero(reuse.reused < 0)
    for rows, pool_ids, pool_scores in candidate_batches(
        index, side.vectors[weighed], weighed, width * ENTERING_REACH, block
    ):
        entries.append(
            _entering(
                index, side, parts, weights, (rows, pool_ids, pool_scores), refit, floor, width
            )
        )
    touched = np.unique(np.concatenate([kept[missing > 0], *(e[0] for e in entries)]))
    touched = touched[~refit[touched]]
    _merge(ids, scores, touched, entries)
    return ids, scores


def _carried_lists(
    served: Lists, reuse: Reuse, kept: NDArray[np.int64], width: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The served lists of the `kept` rows, `width` wide, their entries as new rows (-1 where
    none, or removed) and scores."""
    served_ids, served_scores = served
    shared = min(width, served_ids.shape[1])
    targets = np.full((len(kept), width), -1, dtype=np.int64)
    listed = np.full((len(kept), width), -np.inf, dtype=np.float32)
    old = np.asarray(served_ids[reuse.reused[kept], :shared], dtype=np.int64)
    targets[:, :shared] = np.where(old >= 0, reuse.successor[np.maximum(old, 0)], -1)
    listed[:, :shared] = served_scores[reuse.reused[kept], :shared]
    return targets, listed


def _scores_of(
    side: Side,
    parts: Mapping[str, Any],
    weights: FusionWeights,
    sources: NDArray[np.int64],
    targets: NDArray[np.int64],
) -> NDArray[np.float32]:
    """The hybrid score of each pair (sources[i], targets[i])."""
    if not len(sources):
        return np.zeros(0, dtype=np.float32)
    cosines = np.einsum("ij,ij->i", side.vectors[sources], side.vectors[targets])
    candidates = Candidates(side, targets[:, None], cosines[:, None].astype(np.float32))
    scored: NDArray[np.float32] = pair_scores(parts, side, sources, candidates, weights)[:, 0]
    return scored


def _entering(
    index: VectorIndex,
    side: Side,
    parts: Mapping[str, Any],
    weights: FusionWeights,
    pools: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]],
    refit: NDArray[np.bool_],
    floor: NDArray[np.float32],
    width: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """(list row, entering row, score) where one of `rows` (new or changed) beats the `floor` of
    the list of an article near it (`pools`: rows, their nearest rows and cosines) that is not
    recomputed itself, and is within that article's own candidate pool."""
    rows, pool_ids, pool_scores = pools
    valid = pool_ids >= 0
    valid[valid] = ~refit[pool_ids[valid]]
    holders = pool_ids[valid]
    entering = np.broadcast_to(rows[:, None], pool_ids.shape)[valid]
    cosines = pool_scores[valid]
    # Only where a full build would see it: within the holder's own candidate pool (an article
    # near it need not have it in its pool). Checked first: it costs less than a pair's score.
    pool = max(1, min(width * POOL_FACTOR, index.size - 1))
    within = _in_pool(side, holders, entering, cosines, pools, pool)
    holders, entering, cosines = holders[within], entering[within], cosines[within]
    if not len(holders):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    candidates = Candidates(side, entering[:, None], cosines[:, None])
    fused = pair_scores(parts, side, holders, candidates, weights)[:, 0]
    enters = fused > floor[holders]
    return holders[enters], entering[enters], fused[enters]


def _in_pool(
    side: Side,
    holders: NDArray[np.int64],
    entering: NDArray[np.int64],
    cosines: NDArray[np.float32],
    pools: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]],
    pool: int,
) -> NDArray[np.bool_]:
    """Whether each entering row is among the `pool` nearest of its holder, counting the
    holder's neighbours among the entering row's own nearest (`pools`): what lies near both
    is what could push it out, so this is the exact test wherever those nearest cover the
    holder's pool, and errs towards letting it in elsewhere."""
    rows, pool_ids, _ = pools
    vectors = side.vectors
    inside = np.ones(len(holders), dtype=np.bool_)
    at = np.searchsorted(rows, entering)
    # Many small products: BLAS on one thread (its threads beside FAISS's stall), ~8 times
    # faster than einsum's loops.
    with threadpool_limits(limits=1, user_api="blas"):
        for position in np.unique(at).tolist():
            pairs = np.flatnonzero(at == position)
            near = pool_ids[position][pool_ids[position] >= 0]
            closer = vectors[holders[pairs]] @ vectors[near].T > cosines[pairs][:, None]
            # The holder itself is among `near` and closer to itself than anything: not counted.
            inside[pairs] = np.count_nonzero(closer, axis=1) - 1 < pool
    return inside


def _merge(
    ids: NDArray[np.int32],
    scores: NDArray[np.float32],
    rows: NDArray[np.int64],
    entries: Sequence[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]],
) -> None:
    """Rewrite the lists of `rows` as the best of their entries and of the `entries` (row,
    candidate, score) given for them, best first, each candidate once."""
    if not len(rows):
        return
    width = ids.shape[1]
    at = np.full(len(ids), -1, dtype=np.int64)
    at[rows] = np.arange(len(rows))
    extra = [(at[r], c, s) for r, c, s in entries if len(r)]
    extra = [(r[r >= 0], c[r >= 0], s[r >= 0]) for r, c, s in extra]
    owner = np.concatenate([np.repeat(np.arange(len(rows)), width), *(e[0] for e in extra)])
    candidate = np.concatenate([ids[rows].ravel().astype(np.int64), *(e[1] for e in extra)])
    score = np.concatenate([scores[rows].ravel(), *(e[2] for e in extra)])
    score = np.where(candidate >= 0, score, -np.inf).astype(np.float32)
    order = np.lexsort((-score, owner))
    owner, candidate, score = owner[order], candidate[order], score[order]
    # Each candidate once per list (its best score): pads are all kept, and sort last.
    key = owner * (len(ids) + 1) + candidate + 1
    first = np.zeros(len(key), dtype=np.bool_)
    first[np.unique(key, return_index=True)[1]] = True
    keep = first | (candidate < 0)
    owner, candidate, score = owner[keep], candidate[keep], score[keep]
    rank = np.arange(len(owner)) - np.searchsorted(owner, owner)
    fits = rank < width
    ids[rows] = -1
    scores[rows] = -np.inf
    ids[rows[owner[fits]], rank[fits]] = candidate[fits]
    scores[rows[owner[fits]], rank[fits]] = np.where(candidate[fits] >= 0, score[fits], -np.inf)
