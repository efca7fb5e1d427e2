"""Which BM25 goes beside the TF-IDF cosine: the variants of docs/quality.md measured in the pool
protocol of `cross_dataset.py` (whose cached signals, CACHE_DIR/NAME.v3.npz, must exist).

For each set: BM25 weights in a symmetric cosine (k1 1.2, b 0.75), the served asymmetric share
bm25(s, c) / bm25(s, s) (`bm25` in the cache) and its symmetric mean with bm25(c, s) / bm25(c, c);
each is scored alone as the lexical signal, and as the mean with TF-IDF, in the family
semantic + lexical x signal + time x date informativeness x proximity, leave-one-dataset-out.
Also free weights for TF-IDF and the share.

Usage: python docs/experiments/bm25_variants.py CACHE_DIR NAME=FEED:LABEL ...
(RECOMMENDER_DATA_DIR: the embedding cache)
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from cross_dataset import cached, catalog_informativeness, ndcg, pair_products, pools

from recommender.articles import lexical_text
from recommender.bm25 import Bm25Matrices, coverage_queries
from recommender.tfidf import pair_similarities

LEXICAL = (0.5, 0.7, 1.0, 1.25, 1.5, 2.0, 2.5)
TIME = (1.0, 1.5, 2.0, 2.5)
FREE = (0.25, 0.5, 0.625, 0.75, 1.0)
Signals = dict[str, np.ndarray]


def variants(feed: str, label: str, cache: Path) -> Signals:
    """The BM25 variants over each source's pool (the semantic top 128, as cross_dataset.py)."""
    saved = cached(cache)
    if saved is not None:
        return saved
    experiment, ids, _ = pools(feed, label)
    data, sources = experiment.data, experiment.sources
    documents = Bm25Matrices.fit([lexical_text(a) for a in data.articles]).documents
    norms = np.sqrt(np.asarray(documents.multiply(documents).sum(axis=1)).ravel())
    cosine_rows = sp.csr_matrix(sp.diags(1 / np.maximum(norms, 1e-9)) @ documents)
    queries = coverage_queries(documents)
    result = {
        "bm25 cosine": pair_similarities(cosine_rows, sources, ids),
        "bm25 backward": pair_products(documents, queries, sources, ids),
    }
    np.savez(cache, **result)
    return result


def family(signal: Callable[[Signals], np.ndarray]) -> dict[tuple[float, ...], Callable]:
    return {
        (wl, wt): lambda s, wl=wl, wt=wt: (
            s["semantic"] + wl * signal(s) + wt * catalog_informativeness(s) * s["time"]
        )
        for wl, wt in itertools.product(LEXICAL, TIME)
    }


def out_of_sample(sets: dict[str, Signals], fusions: dict) -> tuple[float, dict[str, float]]:
    scores = {p: {n: ndcg(fuse(s), s) for n, s in sets.items()} for p, fuse in fusions.items()}
    outs = {}
    for held in sets:
        chosen = max(scores, key=lambda p: np.mean([v for n, v in scores[p].items() if n != held]))
        outs[held] = scores[chosen][held]
    return float(np.mean(list(outs.values()))), outs


def main() -> None:
    cache_dir = Path(sys.argv[1])
    sets: dict[str, Signals] = {}
    for spec in sys.argv[2:]:
        name, rest = spec.split("=", 1)
        feed, label = rest.rsplit(":", 1)
        with np.load(cache_dir / f"{name}.v3.npz") as saved:
            sets[name] = {key: saved[key] for key in saved.files}
        sets[name] |= variants(feed, label, cache_dir / f"{name}.bm25.npz")
        s = sets[name]
        s["bm25 symmetric"] = (s["bm25"] + s["bm25 backward"]) / 2
    signals: dict[str, Callable[[Signals], np.ndarray]] = {
        "tfidf": lambda s: s["tfidf"],
        "bm25 cosine": lambda s: s["bm25 cosine"],
        "bm25 share (served)": lambda s: s["bm25"],
        "bm25 share, symmetric": lambda s: s["bm25 symmetric"],
        "(tfidf + bm25 cosine) / 2": lambda s: (s["tfidf"] + s["bm25 cosine"]) / 2,
        "(tfidf + bm25 share) / 2 (served)": lambda s: (s["tfidf"] + s["bm25"]) / 2,
        "(tfidf + symmetric share) / 2": lambda s: (s["tfidf"] + s["bm25 symmetric"]) / 2,
    }
    print("| lexical signal | " + " | ".join(f"{n} out" for n in sets) + " | mean out |")
    print("|---|" + "---|" * (len(sets) + 1))
    for label, signal in signals.items():
        mean, outs = out_of_sample(sets, family(signal))
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in outs.values()) + f" | {mean:.4f} |")
    free = {
        (wt, wb, t): lambda s, wt=wt, wb=wb, t=t: (
            s["semantic"]
            + wt * s["tfidf"]
            + wb * s["bm25"]
            + t * catalog_informativeness(s) * s["time"]
        )
        for wt, wb, t in itertools.product(FREE, FREE, (1.0, 1.5, 2.0))
    }
    mean, outs = out_of_sample(sets, free)
    print(
        "| free weights, tfidf and share | "
        + " | ".join(f"{v:.4f}" for v in outs.values())
        + f" | {mean:.4f} |"
    )


if __name__ == "__main__":
    main()
