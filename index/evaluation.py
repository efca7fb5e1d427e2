"""Offline evaluation: leave-one-out ranking quality of several strategies on one labelled feed.

Every article is a candidate; every article with at least one relevant other article is a
source, and is never counted as its own suggestion. The index is built in memory (the served
one is never touched); embeddings come from, and go to, the data directory's cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from index.serving.recommender_engine import Recommender
from index.state.embedding_cache import EmbeddingCache
from index.versions.index_version import IndexVersion
from index.versions.neighbours import drop_self
from index.versions.reindex_pipeline import (
    analyse_articles,
    build_content,
    build_manifest,
    embed_texts,
    texts_by_hash,
)
from index.versions.vector_index import IndexSpec, VectorIndex
from recommender.articles import Article, embedding_text, lexical_text, text_hash
from recommender.encoding.encoder_protocol import Encoder
from recommender.errors import FeedError, InvalidQuery
from recommender.evaluation import metrics
from recommender.evaluation.more_like_this import LexicalIndex
from recommender.evaluation.relevance import Relevance
from recommender.ingest.feeds import FeedReport, load_articles
from recommender.ranking import RelatedQuery, ServingPolicy
from recommender.settings import IndexSettings
from recommender.signals.base import RankingSignal
from recommender.signals.registry import SIGNALS

Ranked = list[list[int]]
Strategy = Callable[["EvaluationData", NDArray[np.int64], int], Ranked]
#: Sources scored together against the whole catalog by the exact lexical baselines.
_BLOCK = 256


@dataclass
class EvaluationData:
    """A feed, embedded and indexed in memory, with what each strategy needs."""

    articles: list[Article]
    vectors: NDArray[np.float32]
    version: IndexVersion
    policy: ServingPolicy
    show_progress: bool = False

    @cached_property
    def lexical(self) -> LexicalIndex:
        return LexicalIndex.build([lexical_text(a) for a in self.articles])

    @cached_property
    def recommender(self) -> Recommender:
        return Recommender(self.version, self.policy)


def _semantic(data: EvaluationData, sources: NDArray[np.int64], k: int) -> Ranked:
    index = VectorIndex.build(data.vectors, IndexSpec("flat"))
    scores, ids = index.search(data.vectors[sources], k + 1)
    kept, _ = drop_self(sources, ids, scores, k)
    return [[int(i) for i in row if i >= 0] for row in kept]


def _lexical(data: EvaluationData, sources: NDArray[np.int64], k: int) -> Ranked:
    ids, _ = data.lexical.more_like_this_all(k, rows=sources)
    return [[int(i) for i in row if i >= 0] for row in ids]


def _exact_top(
    scores_of: Callable[[NDArray[np.int64]], NDArray[np.float32]],
    sources: NDArray[np.int64],
    k: int,
) -> Ranked:
    """The k best other rows of each source under a dense (sources, catalog) score block."""
    ranked: Ranked = []
    for start in range(0, len(sources), _BLOCK):
        rows = sources[start : start + _BLOCK]
        scores = scores_of(rows)
        scores[np.arange(len(rows)), rows] = -np.inf
        width = min(k, scores.shape[1] - 1)
        top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        ranked += np.take_along_axis(top, order, axis=1).tolist()
    return ranked


def _alone(signal: RankingSignal) -> Strategy:
    """The strategy of one ranking signal alone, exact over the whole catalog."""

    def strategy(data: EvaluationData, sources: NDArray[np.int64], k: int) -> Ranked:
        part, side = data.version.signals[signal.name], data.version.side
        return _exact_top(lambda rows: signal.alone(part, side, rows), sources, k)

    return strategy


def _default(data: EvaluationData, sources: NDArray[np.int64], k: int) -> Ranked:
    recommender = data.recommender
    query = RelatedQuery(limit=k)
    slugs = [card["slug"] for card in data.version.cards]
    return [
        [s.row for s in recommender.related(slugs[row], query)]
        for row in tqdm(sources.tolist(), desc="default", disable=not data.show_progress)
    ]


def strategies_by_name() -> dict[str, Strategy]:
    """Strategy name -> ranked suggestion rows for each source row: the baselines, each
    registered signal that is a strategy of its own (`RankingSignal.strategy`), and `default`,
    the served ranking."""
    alone = {s.strategy: _alone(s) for s in SIGNALS if s.strategy is not None}
    return {"lexical": _lexical, "semantic": _semantic, **alone, "default": _default}


def prepare(
    settings: IndexSettings,
    sources: Sequence[Path],
    encoder: Encoder,
    *,
    show_progress: bool = False,
    report: FeedReport | None = None,
) -> EvaluationData:
    """Read, embed (through the cache) and index a feed in memory."""
    report = report if report is not None else FeedReport()
    articles = list(load_articles(sources, report).values())
    if len(articles) < 2:
        raise FeedError("an evaluation needs at least two valid articles")
    texts = [embedding_text(article) for article in articles]
    hashes = [text_hash(text) for text in texts]
    cache = EmbeddingCache(settings.embedding_cache_path)
    try:
        vectors, _ = embed_texts(
            hashes, texts_by_hash(hashes, texts), encoder, cache, show_progress=show_progress
        )
    finally:
        cache.close()
    lexical_hashes, _ = analyse_articles(articles, settings)
    cards = [article.card() for article in articles]
    content, recall, weights = build_content(
        cards, vectors, lexical_hashes, settings, show_progress
    )
    manifest = build_manifest(
        "evaluation", settings, encoder.model_id, content, recall, weights, "", sources
    )
    version = IndexVersion.from_content(content, manifest)
    return EvaluationData(articles, vectors, version, settings.policy, show_progress)


def evaluate(
    data: EvaluationData,
    relevance: Relevance,
    *,
    k: int = 5,
    strategies: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score each strategy; returns {"k", "articles", "sources", "ranking", "results": {name:
    metrics}}, "ranking" being the parameters `default` scored with (as a manifest has them);
    every strategy (`strategies_by_name`) unless `strategies` names some."""
    known = strategies_by_name()
    chosen = list(known) if strategies is None else list(strategies)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise InvalidQuery(f"unknown strategy {unknown[0]!r}; choose from {', '.join(known)}")
    slugs = [article.slug for article in data.articles]
    judged = [(row, relevance.relevant(slug)) for row, slug in enumerate(slugs)]
    judged = [(row, rel) for row, rel in judged if rel]
    if not judged:
        raise InvalidQuery("no article has a relevant other article: check the label or qrels")
    sources = np.array([row for row, _ in judged], dtype=np.int64)
    results = {}
    for name in chosen:
        ranked = known[name](data, sources, k)
        results[name] = _score(data, judged, ranked, slugs, k)
    return {
        "k": k,
        "articles": len(slugs),
        "sources": len(judged),
        "ranking": data.version.manifest.ranking,
        "results": results,
    }


def _score(
    data: EvaluationData,
    judged: list[tuple[int, dict[str, float]]],
    ranked: Ranked,
    slugs: list[str],
    k: int,
) -> dict[str, float]:
    per_source: list[metrics.SourceScores] = []
    for (_, relevant), rows in zip(judged, ranked, strict=True):
        suggested = [slugs[row] for row in rows[:k]]
        per_source.append(metrics.score_source(suggested, relevant, k, data.vectors[rows[:k]]))
    return metrics.aggregate(per_source, [r[:k] for r in ranked], len(slugs))
