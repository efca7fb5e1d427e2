"""Fusion parameters chosen the honest way: leave-one-dataset-out over the labelled sets.

For each dataset, each source's candidate pool is what serving re-scores (the semantic top 128,
self excluded), with every signal computed once over it and kept in CACHE_DIR: semantic cosine,
served TF-IDF cosine, the same with proper nouns and numbers boosted
(`TfidfModel.fit(name_boost=...)`), proper-noun TF-IDF cosine (`recommender.proper_nouns`), BM25
normalised by the source's score against itself (the served BM25 share), time proximity exp(-days /
3) and the days themselves (for other scales). Time families: a fixed weight (linear), another
scale (1 or 7 days), the weight times the set's date informativeness (as served:
`recommender.ranking.date_informativeness`, here over the labelled sources' top 5 by meaning rather
than a sample of the catalog), and the weight times each pool's rarity of close dates.
Every fusion family x parameter grid is scored by nDCG@5 of the pool's top 5 (no near-duplicate
rule; `recommender evaluate` gives the served figures). For each held-out set, the parameters
are chosen by the mean nDCG@5 over the *other* sets and scored on the held-out one
(out of sample), beside the best parameters for that set itself (in sample).

Usage: python docs/experiments/cross_dataset.py CACHE_DIR NAME=FEED:LABEL ...
(RECOMMENDER_DATA_DIR: the embedding cache; RECOMMENDER_THREADS=1 to spare the other cores)
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from common import Experiment, load
from sklearn.feature_extraction.text import TfidfVectorizer

from index.versions.neighbours import drop_self
from index.versions.vector_index import IndexSpec, VectorIndex
from recommender.articles import lexical_text
from recommender.bm25 import Bm25Matrices
from recommender.proper_nouns import proper_noun_counts
from recommender.tfidf import TfidfModel, pair_similarities

POOL = 128
K = 5
BOOSTS = (0.5, 1.0, 2.0)


def pair_products(
    left: sp.csr_matrix, right: sp.csr_matrix, sources: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    out = np.zeros(ids.shape, dtype=np.float32)
    for start in range(0, len(sources), 256):
        block = ids[start : start + 256]
        rows = np.repeat(sources[start : start + 256], block.shape[1])
        out[start : start + 256] = np.asarray(
            left[rows].multiply(right[block.ravel()]).sum(axis=1)
        ).reshape(block.shape)
    return out


def cached(cache: Path) -> dict[str, np.ndarray] | None:
    """Signals saved by an earlier run, if any."""
    if not cache.exists():
        return None
    with np.load(cache) as saved:
        return {name: saved[name] for name in saved.files}


def relevance_matrix(experiment: Experiment, sources: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Whether each pool member (`ids`, by source row) is relevant to its source."""
    slugs = experiment.slugs
    return np.array(
        [
            [slugs[c] in experiment.relevance.relevant(slugs[s]) for c in row]
            for s, row in zip(sources, ids, strict=True)
        ]
    )


def pools(feed: str, label: str) -> tuple[Experiment, np.ndarray, np.ndarray]:
    """The labelled feed, each source's candidate pool (the semantic top POOL, self excluded)
    and their cosines."""
    experiment = load(feed, label)
    data, sources = experiment.data, experiment.sources
    index = VectorIndex.build(data.vectors, IndexSpec("flat"))
    scores, ids = index.search(data.vectors[sources], POOL + 1)
    return experiment, *drop_self(sources, ids, scores, POOL)


def signals(feed: str, label: str, cache: Path) -> dict[str, np.ndarray]:
    saved = cached(cache)
    if saved is not None:
        return saved
    experiment, ids, semantic = pools(feed, label)
    data, sources = experiment.data, experiment.sources
    texts = [lexical_text(a) for a in data.articles]
    names = TfidfVectorizer(
        analyzer=lambda text: list(proper_noun_counts(text).elements()), sublinear_tf=True
    ).fit_transform(texts)
    bm25 = Bm25Matrices.fit(texts)
    own = pair_products(bm25.queries, bm25.documents, sources, sources[:, None])
    days = np.abs(experiment.dates[sources][:, None] - experiment.dates[ids]) / 86_400
    slugs = experiment.slugs
    relevant = relevance_matrix(experiment, sources, ids)
    total = np.array([len(experiment.relevance.relevant(slugs[s])) for s in sources])
    result = {
        "semantic": semantic,
        "tfidf": pair_similarities(data.version.side.features["lexical"], sources, ids),
        **{
            f"tfidf boost {boost}": pair_similarities(
                TfidfModel.fit(texts, name_boost=boost)[1], sources, ids
            )
            for boost in BOOSTS
        },
        "names": pair_similarities(sp.csr_matrix(names, dtype=np.float32), sources, ids),
        "bm25": pair_products(bm25.queries, bm25.documents, sources, ids) / np.maximum(own, 1e-9),
        "time": np.nan_to_num(np.exp(-days / 3.0), nan=0.0),
        "days": days.astype(np.float32),
        "chance": np.array(chance_proximity(experiment.dates)),
        "relevant": relevant,
        "total": total,
    }
    np.savez(cache, **result)
    return result


def chance_proximity(dates: np.ndarray, pairs: int = 200_000) -> float:
    """Mean time proximity exp(-days / 3) of random pairs of dated articles (seed 0)."""
    dated = dates[~np.isnan(dates)]
    if len(dated) < 2:
        return 0.0
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, len(dated), (2, pairs))
    return float(np.exp(-np.abs(dated[left] - dated[right]) / 86_400 / 3.0).mean())


def proximity(s: dict[str, np.ndarray], scale: float) -> np.ndarray:
    return np.nan_to_num(np.exp(-s["days"] / scale), nan=0.0)


def pool_rarity(prox: np.ndarray) -> np.ndarray:
    """How rare closeness in time is in each source's pool: log(pool / (1 + expected number of
    close candidates)) / log(pool), like an inverse document frequency of "same days"."""
    pool = prox.shape[1]
    return np.clip(np.log(pool / (1 + prox.sum(axis=1, keepdims=True))) / np.log(pool), 0, 1)


def catalog_informativeness(s: dict[str, np.ndarray], top: int = 5) -> float:
    """How much closer in time an article's semantic top `top` are than random pairs, on 0..1."""
    dated = ~np.isnan(s["days"][:, :top])
    near = float(s["time"][:, :top][dated].mean()) if dated.any() else 0.0
    chance = float(s["chance"])
    return max(0.0, (near - chance) / max(1e-9, 1 - chance))


def ndcg(scores: np.ndarray, s: dict[str, np.ndarray]) -> float:
    top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    discounts = 1 / np.log2(np.arange(2, K + 2))
    dcg = (np.take_along_axis(s["relevant"], top, axis=1) * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(s["total"], K) - 1]
    return float((dcg / ideal).mean())


def by_max(values: np.ndarray) -> np.ndarray:
    """Each source's signal divided by its largest value over the pool."""
    return values / np.maximum(values.max(axis=1, keepdims=True), 1e-9)


Fusion = Callable[[dict[str, np.ndarray]], np.ndarray]


def fusions() -> Iterator[tuple[str, str, Fusion]]:
    """(family, parameters, scoring function)."""
    lexical = (0.0, 0.3, 0.5, 0.7, 1.0, 1.25, 1.5, 2.0, 2.5)
    times = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
    for wl, wt in itertools.product(lexical, times):
        yield (
            "linear",
            f"tfidf {wl} time {wt}",
            (lambda s, wl=wl, wt=wt: s["semantic"] + wl * s["tfidf"] + wt * s["time"]),
        )
    for wl, wt, scale in itertools.product(lexical, times, (1.0, 7.0)):
        yield (
            "linear, time scale",
            f"tfidf {wl} time {wt} scale {scale}",
            (
                lambda s, wl=wl, wt=wt, sc=scale: (
                    s["semantic"] + wl * s["tfidf"] + wt * proximity(s, sc)
                )
            ),
        )
    for wl, wt in itertools.product(lexical, (*times, 1.5, 2.0)):
        yield (
            "linear, time x pool rarity",
            f"tfidf {wl} time {wt}",
            (
                lambda s, wl=wl, wt=wt: (
                    s["semantic"] + wl * s["tfidf"] + wt * pool_rarity(s["time"]) * s["time"]
                )
            ),
        )
        yield (
            "linear, time x catalog informativeness",
            f"tfidf {wl} time {wt}",
            (
                lambda s, wl=wl, wt=wt: (
                    s["semantic"] + wl * s["tfidf"] + wt * catalog_informativeness(s) * s["time"]
                )
            ),
        )
        yield (
            "(TF-IDF + BM25 share) / 2, time x catalog informativeness",
            f"lexical {wl} time {wt}",
            (
                lambda s, wl=wl, wt=wt: (
                    s["semantic"]
                    + wl * (s["tfidf"] + s["bm25"]) / 2
                    + wt * catalog_informativeness(s) * s["time"]
                )
            ),
        )
    for wl, wt, boost in itertools.product(lexical, times, BOOSTS):
        yield (
            "linear, names boosted",
            f"tfidf {wl} time {wt} boost {boost}",
            (
                lambda s, wl=wl, wt=wt, b=boost: (
                    s["semantic"] + wl * s[f"tfidf boost {b}"] + wt * s["time"]
                )
            ),
        )
    for wl, wt, wn in itertools.product(lexical, times, (0.1, 0.2, 0.4)):
        yield (
            "linear+names",
            f"tfidf {wl} time {wt} names {wn}",
            (
                lambda s, wl=wl, wt=wt, wn=wn: (
                    s["semantic"] + wl * s["tfidf"] + wn * s["names"] + wt * s["time"]
                )
            ),
        )
    for wl, wt, wb in itertools.product(lexical, times, (0.1, 0.2, 0.4)):
        yield (
            "linear+bm25",
            f"tfidf {wl} time {wt} bm25 {wb}",
            (
                lambda s, wl=wl, wt=wt, wb=wb: (
                    s["semantic"] + wl * s["tfidf"] + wb * s["bm25"] + wt * s["time"]
                )
            ),
        )
    for wl, wt, wn in itertools.product((0.5, 1.0, 1.5, 2.0), times, (0.0, 0.2, 0.5)):
        yield (
            "max-normalised",
            f"tfidf {wl} time {wt} names {wn}",
            (
                lambda s, wl=wl, wt=wt, wn=wn: (
                    by_max(s["semantic"])
                    + wl * by_max(s["tfidf"])
                    + wn * by_max(s["names"])
                    + wt * s["time"]
                )
            ),
        )


def main() -> None:
    cache_dir = Path(sys.argv[1])
    cache_dir.mkdir(parents=True, exist_ok=True)
    sets: dict[str, dict[str, np.ndarray]] = {}
    for spec in sys.argv[2:]:
        name, rest = spec.split("=", 1)
        feed, label = rest.rsplit(":", 1)
        sets[name] = signals(feed, label, cache_dir / f"{name}.v3.npz")
    table = {
        (family, params): {name: ndcg(fuse(s), s) for name, s in sets.items()}
        for family, params, fuse in fusions()
    }
    (cache_dir / "grid.json").write_text(
        json.dumps([{"family": f, "params": p, **v} for (f, p), v in table.items()], indent=1)
    )
    current = table[("linear", "tfidf 0.7 time 0.2")]
    families = sorted({family for family, _ in table})
    print("| family | " + " | ".join(f"{n} in / out (params out)" for n in sets) + " | mean out |")
    print("|---|" + "---|" * (len(sets) + 1))
    print(
        "| served today (tfidf 0.7 time 0.2) | "
        + " | ".join(f"{current[n]:.4f}" for n in sets)
        + f" | {np.mean(list(current.values())):.4f} |"
    )
    for family in [*families, "any"]:
        keys = [key for key in table if family in ("any", key[0])]
        cells, outs = [], []
        for held in sets:
            inside = max(keys, key=lambda key: table[key][held])
            outside = max(
                keys, key=lambda key: np.mean([v for n, v in table[key].items() if n != held])
            )
            outs.append(table[outside][held])
            cells.append(f"{table[inside][held]:.4f} / {table[outside][held]:.4f} ({outside[1]})")
        print(f"| {family} | " + " | ".join(cells) + f" | {np.mean(outs):.4f} |")
    for name, s in sets.items():
        print(
            f"{name}: catalog informativeness {catalog_informativeness(s):.3f}, "
            f"mean pool rarity {pool_rarity(s['time']).mean():.3f}"
        )
    for family in [*families, "any"]:
        keys = [key for key in table if family in ("any", key[0])]
        chosen = max(keys, key=lambda key: np.mean(list(table[key].values())))
        print(f"chosen on all sets, {family}: {chosen} -> {table[chosen]}")


if __name__ == "__main__":
    main()
