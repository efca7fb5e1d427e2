"""What the ranker experiments share: a labelled feed loaded with its cached embeddings,
its sources, a TF-IDF matrix and publication times.

The TF-IDF here is scikit-learn's (installed with sentence-transformers) as in PEERS.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from index.evaluation import EvaluationData, prepare
from recommender.articles import lexical_text
from recommender.encoding.encoder_factory import load_encoder
from recommender.evaluation.relevance import LabelRelevance
from recommender.settings import Settings


@dataclass
class Experiment:
    data: EvaluationData
    relevance: LabelRelevance
    slugs: list[str]
    sources: np.ndarray
    tfidf: Any
    dates: np.ndarray


def load(feed: str, label: str) -> Experiment:
    """The feed `feed` with relevance by `label` (RECOMMENDER_DATA_DIR holds the cache)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    settings = Settings()
    data = prepare(settings.index, [Path(feed)], load_encoder(settings.encoder))
    relevance = LabelRelevance.from_articles(data.articles, label)
    slugs = [a.slug for a in data.articles]
    sources = np.array([i for i, slug in enumerate(slugs) if relevance.relevant(slug)])
    tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform(
        [lexical_text(a) for a in data.articles]
    )
    dates = np.array(
        [a.published_at.timestamp() if a.published_at else np.nan for a in data.articles]
    )
    return Experiment(data, relevance, slugs, sources, tfidf, dates)
