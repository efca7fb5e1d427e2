"""Issue 34: on full-text reports of look-alike events, does a length-aware fusion or a
whole-body semantic signal beat the served ranker, leave-one-dataset-out?

Same pool protocol as `cross_dataset.py` (each source's semantic top 128, self excluded,
nDCG@5 of the pool's top 5, no near-duplicate rule), with the served family as the base:

    semantic + lexical x (TF-IDF + BM25 share) / 2 + time x date informativeness x proximity

Families measured (for each held-out set the parameters are chosen by the mean over the
others, every set weighed alike):
- served: the base grid.
- lexical x source length: the lexical weight times 1 + a x log2(max(1, source chars / 1,200)),
  i.e. more weight to the words the embedding never sees (1,200: the embedded lead).
- lexical x pair length: the same with min(source chars, candidate chars).
- whole body, mean: the semantic cosine replaced by (1 - b) x lead cosine + b x the cosine of
  the mean of the lead's and the body's passage vectors (1,000-character windows after the
  lead, at most PASSAGES of them); where a text has no passage the two are equal.
- whole body, max: the same with the best cosine over the two texts' passages (lead included).
- whole body, mean + lexical x source length: both.

Usage: python docs/experiments/fulltext_fusion.py CACHE_DIR NAME=FEED:LABEL ...
(RECOMMENDER_DATA_DIR: the embedding cache, passages included; RECOMMENDER_THREADS=1;
FULLTEXT_PASSAGES=name,name...: the sets whose passages are embedded, the others get none.)
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from cross_dataset import (
    K,
    cached,
    catalog_informativeness,
    chance_proximity,
    ndcg,
    pair_products,
    pools,
    relevance_matrix,
)

from index.state.embedding_cache import EmbeddingCache
from index.versions.reindex_pipeline import embed_texts, texts_by_hash
from recommender.articles import EMBEDDING_LEAD_CHARS, lexical_text, text_hash
from recommender.bm25 import Bm25Matrices
from recommender.encoding.encoder_factory import load_encoder
from recommender.encoding.encoder_protocol import normalise_rows
from recommender.settings import Settings
from recommender.tfidf import pair_similarities

PASSAGE_CHARS = 1_000
PASSAGES = 4
LEXICAL = (0.75, 1.0, 1.25, 1.5, 2.0, 2.5)
TIME = (1.0, 1.5, 2.0, 2.5)
GROWTH = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75)
BODY = (0.0, 0.25, 0.5, 0.75, 1.0)
Signals = dict[str, np.ndarray]


def passages(body: str) -> list[str]:
    """The body's windows after the embedded lead."""
    end = min(len(body), EMBEDDING_LEAD_CHARS + PASSAGES * PASSAGE_CHARS)
    return [
        body[start : start + PASSAGE_CHARS].strip()
        for start in range(EMBEDDING_LEAD_CHARS, end, PASSAGE_CHARS)
        if body[start : start + PASSAGE_CHARS].strip()
    ]


def body_signals(experiment, ids: np.ndarray, semantic: np.ndarray) -> Signals:
    """Whole-body cosines over the pools: mean-pooled and best passage pair."""
    data, sources = experiment.data, experiment.sources
    texts, owner = [], []
    for row, article in enumerate(data.articles):
        chunks = passages(article.body or "")
        texts += chunks
        owner += [row] * len(chunks)
    settings = Settings()
    encoder = load_encoder(settings.encoder)
    hashes = [text_hash(text) for text in texts]
    cache = EmbeddingCache(settings.index.embedding_cache_path)
    started = time.perf_counter()
    try:
        vectors, _ = embed_texts(hashes, texts_by_hash(hashes, texts), encoder, cache)
    finally:
        cache.close()
    print(f"{len(texts)} passages in {time.perf_counter() - started:.0f} s", flush=True)
    owner_rows = np.array(owner, dtype=np.int64)
    pooled = data.vectors.copy()
    if len(texts):
        np.add.at(pooled, owner_rows, vectors)
    pooled = normalise_rows(pooled)
    mean = np.einsum("sd,spd->sp", pooled[sources], pooled[ids])
    each: list[np.ndarray] = [data.vectors[row][None, :] for row in range(len(data.articles))]
    for row in np.unique(owner_rows):
        each[row] = np.vstack([data.vectors[row][None, :], vectors[owner_rows == row]])
    best = semantic.copy()
    for i, source in enumerate(sources):
        if len(each[source]) == 1 and not any(len(each[c]) > 1 for c in ids[i]):
            continue
        for j, candidate in enumerate(ids[i]):
            best[i, j] = float((each[source] @ each[candidate].T).max())
    return {"body mean": mean.astype(np.float32), "body max": best.astype(np.float32)}


def signals(name: str, feed: str, label: str, cache_dir: Path, with_body: bool) -> Signals:
    """The base signals (cached in NAME.fulltext.npz) and the whole-body ones (NAME.body.npz;
    the lead cosine where the set's passages are not embedded)."""
    base, body = cache_dir / f"{name}.fulltext.npz", cache_dir / f"{name}.body.npz"
    saved, saved_body = cached(base), cached(body)
    if saved is not None and (saved_body is not None or not with_body):
        lead = {"body mean": saved["semantic"], "body max": saved["semantic"]}
        return saved | (saved_body if saved_body is not None else lead)
    experiment, ids, semantic = pools(feed, label)
    if saved is not None:
        result = body_signals(experiment, ids, semantic)
        np.savez(body, **result)
        return saved | result
    data, sources = experiment.data, experiment.sources
    texts = [lexical_text(a) for a in data.articles]
    bm25 = Bm25Matrices.fit(texts)
    own = pair_products(bm25.queries, bm25.documents, sources, sources[:, None])
    days = np.abs(experiment.dates[sources][:, None] - experiment.dates[ids]) / 86_400
    relevant = relevance_matrix(experiment, sources, ids)
    lengths = np.array([len(text) for text in texts], dtype=np.float32)
    result = {
        "semantic": semantic,
        "tfidf": pair_similarities(data.version.side.features["lexical"], sources, ids),
        "bm25": pair_products(bm25.queries, bm25.documents, sources, ids) / np.maximum(own, 1e-9),
        "time": np.nan_to_num(np.exp(-days / 3.0), nan=0.0),
        "days": days.astype(np.float32),
        "chance": np.array(chance_proximity(experiment.dates)),
        "relevant": relevant,
        "total": np.array(
            [len(experiment.relevance.relevant(experiment.slugs[s])) for s in sources]
        ),
        "source chars": lengths[sources][:, None],
        "pair chars": np.minimum(lengths[sources][:, None], lengths[ids]),
    }
    np.savez(base, **result)
    print(f"{name}: {len(sources)} sources, signals cached", flush=True)
    if with_body:
        extra = body_signals(experiment, ids, semantic)
        np.savez(body, **extra)
        return result | extra
    return result | {"body mean": semantic, "body max": semantic}


def growth(chars: np.ndarray, a: float) -> np.ndarray:
    return 1 + a * np.log2(np.maximum(1.0, chars / EMBEDDING_LEAD_CHARS))


Fusion = Callable[[Signals], np.ndarray]


def fusions() -> dict[str, dict[str, Fusion]]:
    """family -> parameters -> scoring function."""

    def fuse(semantic: Fusion, lexical_scale: Fusion, wl: float, wt: float) -> Fusion:
        return lambda s: (
            semantic(s)
            + wl * lexical_scale(s) * (s["tfidf"] + s["bm25"]) / 2
            + wt * catalog_informativeness(s) * s["time"]
        )

    def lead(s: Signals) -> np.ndarray:
        return s["semantic"]

    def one(s: Signals) -> float:
        return 1.0

    out: dict[str, dict[str, Fusion]] = {}
    base = itertools.product(LEXICAL, TIME)
    out["served family"] = {f"lexical {wl} time {wt}": fuse(lead, one, wl, wt) for wl, wt in base}
    for family, key in (
        ("lexical x source length", "source chars"),
        ("lexical x pair length", "pair chars"),
    ):
        out[family] = {
            f"lexical {wl} time {wt} growth {a}": fuse(
                lead, lambda s, a=a, key=key: growth(s[key], a), wl, wt
            )
            for wl, wt, a in itertools.product(LEXICAL, TIME, GROWTH)
        }
    for family, key in (("whole body, mean", "body mean"), ("whole body, max", "body max")):
        out[family] = {
            f"lexical {wl} time {wt} body {b}": fuse(
                lambda s, b=b, key=key: (1 - b) * s["semantic"] + b * s[key], one, wl, wt
            )
            for wl, wt, b in itertools.product(LEXICAL, TIME, BODY)
        }
    out["whole body, mean + lexical x source length"] = {
        f"lexical {wl} time {wt} body {b} growth {a}": fuse(
            lambda s, b=b: (1 - b) * s["semantic"] + b * s["body mean"],
            lambda s, a=a: growth(s["source chars"], a),
            wl,
            wt,
        )
        for wl, wt, b, a in itertools.product(LEXICAL, TIME, BODY, GROWTH)
    }
    return out


def per_source_ndcg(scores: np.ndarray, s: Signals) -> np.ndarray:
    """nDCG@5 of each source's top 5 of its pool."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    discounts = 1 / np.log2(np.arange(2, K + 2))
    dcg = (np.take_along_axis(s["relevant"], top, axis=1) * discounts).sum(axis=1)
    return dcg / np.cumsum(discounts)[np.minimum(s["total"], K) - 1]


def by_length(name: str, s: Signals) -> None:
    """The served fusion against TF-IDF and the lead cosine alone, by quartile of source length:
    does the words' lead over the embedding grow with the text?"""
    served = per_source_ndcg(
        s["semantic"]
        + 1.25 * (s["tfidf"] + s["bm25"]) / 2
        + 1.5 * catalog_informativeness(s) * s["time"],
        s,
    )
    tfidf, semantic = per_source_ndcg(s["tfidf"], s), per_source_ndcg(s["semantic"], s)
    chars = s["source chars"][:, 0]
    edges = np.quantile(chars, [0, 0.25, 0.5, 0.75, 1])
    for low, high in itertools.pairwise(edges):
        part = (chars >= low) & (chars <= high)
        print(
            f"| {name} | {low:,.0f}-{high:,.0f} | {part.sum()} | {served[part].mean():.4f} | "
            f"{tfidf[part].mean():.4f} | {semantic[part].mean():.4f} | "
            f"{served[part].mean() - tfidf[part].mean():+.4f} |"
        )


def main() -> None:
    cache_dir = Path(sys.argv[1])
    cache_dir.mkdir(parents=True, exist_ok=True)
    with_body = set(filter(None, os.environ.get("FULLTEXT_PASSAGES", "").split(",")))
    sets: Signals = {}
    for spec in sys.argv[2:]:
        name, rest = spec.split("=", 1)
        feed, label = rest.rsplit(":", 1)
        sets[name] = signals(name, feed, label, cache_dir, name in with_body)
    names = list(sets)
    print("| family | " + " | ".join(f"{n} in / out" for n in names) + " | mean out |")
    print("|---|" + "---|" * (len(names) + 1))
    served = "lexical 1.25 time 1.5"
    for family, grid in fusions().items():
        if family.startswith("whole body") and not with_body:
            continue  # the lead cosine stands in for the body's: these equal the served family
        table = {
            params: {n: ndcg(fuse(s), s) for n, s in sets.items()} for params, fuse in grid.items()
        }
        cells, outs, chosen = [], [], []
        for held in names:
            inside = max(table, key=lambda p: table[p][held])
            outside = max(
                table, key=lambda p: np.mean([v for n, v in table[p].items() if n != held])
            )
            outs.append(table[outside][held])
            chosen.append(f"{held}: {outside}")
            cells.append(f"{table[inside][held]:.4f} / {table[outside][held]:.4f}")
        print(f"| {family} | " + " | ".join(cells) + f" | {np.mean(outs):.4f} |")
        print("  out-of-sample choices: " + "; ".join(chosen))
        everywhere = max(table, key=lambda p: np.mean(list(table[p].values())))
        print(
            f"  chosen on all sets: {everywhere} -> "
            + ", ".join(f"{n} {v:.4f}" for n, v in table[everywhere].items())
        )
        if family == "served family":
            print(
                f"  served ({served}): "
                + ", ".join(f"{n} {v:.4f}" for n, v in table[served].items())
            )
    print("\n| set | source chars | sources | served | tfidf | semantic | served - tfidf |")
    print("|---|---|---|---|---|---|---|")
    for name, s in sets.items():
        by_length(name, s)
    for name, s in sets.items():
        print(
            f"{name}: date informativeness {catalog_informativeness(s):.3f}, "
            f"median source chars {np.median(s['source chars']):.0f}"
        )


if __name__ == "__main__":
    main()
