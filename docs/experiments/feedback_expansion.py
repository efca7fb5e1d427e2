"""Issue 34: does pseudo-relevance feedback (the source's first-pass neighbours vote for each
candidate) lift the served ranker, leave-one-dataset-out?

Same pool protocol as `cross_dataset.py` (each source's semantic top 128, self excluded,
nDCG@5 of the pool's top 5, no near-duplicate rule). The first pass is the served fusion

    f(s, c) = semantic + lexical x (TF-IDF + BM25 share) / 2
              + time x date informativeness x proximity

at the served weights (lexical 1.25, time 1.5); its top K_MAX pool members are the source's
neighbours n_1..n_k. The second pass adds

    g x mean over the first k neighbours n (n != c) of f(n, c)

with the same weights (family "feedback, whole fusion"), or only the semantic cosine of n and c
("feedback, meaning only", i.e. average query expansion of the embedding). A neighbour is never
its own voter: for c = n_j the mean runs over the other neighbours.

Usage: python docs/experiments/feedback_expansion.py CACHE_DIR NAME=FEED:LABEL ...
(RECOMMENDER_DATA_DIR: the embedding cache; RECOMMENDER_THREADS=1 to spare the other cores.)
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
from cross_dataset import cached, catalog_informativeness, ndcg, pair_products, pools
from fulltext_fusion import Signals
from hubness import Table, labelled_sets, report

from recommender.articles import lexical_text
from recommender.bm25 import Bm25Matrices
from recommender.tfidf import pair_similarities

K_MAX = 5
SERVED = (1.25, 1.5)
LEXICAL = (0.75, 1.0, 1.25, 1.5, 2.0, 2.5)
TIME = (1.0, 1.5, 2.0, 2.5)
GAIN = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5)
NEIGHBOURS = (1, 2, 3, 5)


def fused(s: Signals, wl: float, wt: float, prefix: str = "") -> np.ndarray:
    return (
        s[prefix + "semantic"]
        + wl * (s[prefix + "tfidf"] + s[prefix + "bm25"]) / 2
        + wt * catalog_informativeness(s) * s[prefix + "time"]
    )


def neighbour_signals(feed: str, label: str, base: Signals, cache: Path) -> Signals:
    """The served first pass's top K_MAX of each pool, and every signal between each of them
    and every pool member: arrays (sources, K_MAX, pool)."""
    saved = cached(cache)
    if saved is not None:
        return saved
    experiment, ids, _ = pools(feed, label)
    data = experiment.data
    first = fused(base, *SERVED)
    top = np.argsort(-first, axis=1, kind="stable")[:, :K_MAX]
    voters = np.take_along_axis(ids, top, axis=1)  # (S, K) catalog rows
    rows = voters.ravel()
    targets = np.repeat(ids, K_MAX, axis=0)  # (S*K, pool)
    vectors = data.vectors
    semantic = np.einsum("nd,npd->np", vectors[rows], vectors[targets])
    texts = [lexical_text(a) for a in data.articles]
    bm25 = Bm25Matrices.fit(texts)
    own = pair_products(bm25.queries, bm25.documents, rows, rows[:, None])
    days = np.abs(experiment.dates[rows][:, None] - experiment.dates[targets]) / 86_400
    shape = (*voters.shape, ids.shape[1])
    result = {
        "n semantic": semantic.reshape(shape).astype(np.float32),
        "n tfidf": pair_similarities(data.version.side.features["lexical"], rows, targets).reshape(
            shape
        ),
        "n bm25": (
            pair_products(bm25.queries, bm25.documents, rows, targets) / np.maximum(own, 1e-9)
        ).reshape(shape),
        "n time": np.nan_to_num(np.exp(-days / 3.0), nan=0.0).reshape(shape).astype(np.float32),
        "n self": (targets == rows[:, None]).reshape(shape),
    }
    np.savez(cache, **result)
    return result


def vote(s: Signals, values: np.ndarray, k: int) -> np.ndarray:
    """Mean over the first k neighbours of `values` (S, K, pool), each neighbour's own entry left
    out."""
    kept = ~s["n self"][:, :k]
    total = (values[:, :k] * kept).sum(axis=1)
    return total / np.maximum(kept.sum(axis=1), 1)


def main() -> None:
    cache_dir = Path(sys.argv[1])
    sets: dict[str, Signals] = {}
    for name, feed, label, base in labelled_sets(cache_dir, sys.argv[2:]):
        sets[name] = base | neighbour_signals(
            feed, label, base, cache_dir / f"{name}.neighbours.npz"
        )
        print(f"{name}: ready", flush=True)
    names = list(sets)
    families = {
        "served family": lambda s, wl, wt, g, k: fused(s, wl, wt),
        "feedback, whole fusion": lambda s, wl, wt, g, k: (
            fused(s, wl, wt) + g * vote(s, fused(s, wl, wt, "n "), k)
        ),
        "feedback, meaning only": lambda s, wl, wt, g, k: (
            fused(s, wl, wt) + g * vote(s, s["n semantic"], k)
        ),
        "feedback, words only": lambda s, wl, wt, g, k: (
            fused(s, wl, wt) + g * vote(s, (s["n tfidf"] + s["n bm25"]) / 2, k)
        ),
    }
    print("| family | " + " | ".join(f"{n} in / out" for n in names) + " | mean out |")
    print("|---|" + "---|" * (len(names) + 1))
    tables: dict[str, Table] = {}
    for family, score in families.items():
        grid = itertools.product(
            LEXICAL,
            TIME,
            (0.0,) if family == "served family" else GAIN,
            (1,) if family == "served family" else NEIGHBOURS,
        )
        table = {p: {n: ndcg(score(s, *p), s) for n, s in sets.items()} for p in grid}
        tables[family] = table
        report(family, table, tables["served family"][(*SERVED, 0.0, 1)])


if __name__ == "__main__":
    main()
