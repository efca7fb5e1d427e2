"""Ranker step 3: re-scoring a semantic candidate pool vs scoring the whole catalog (nDCG@5).

Usage: python docs/experiments/candidate_pool.py FEED LABEL
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer

from index.evaluation import prepare
from recommender import metrics
from recommender.articles import lexical_text
from recommender.embedding import load_encoder
from recommender.relevance import LabelRelevance
from recommender.settings import Settings

ds = sys.argv[1]
field = sys.argv[2]
s = Settings()
data = prepare(s, [Path(ds)], load_encoder(s))
arts = data.articles
V = data.vectors
n = len(arts)
rel = LabelRelevance.from_articles(arts, field)
slugs = [a.slug for a in arts]
judged = [(i, rel.relevant(sl)) for i, sl in enumerate(slugs)]
judged = [(i, r) for i, r in judged if r]
src = np.array([i for i, _ in judged])
X = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform(
    [lexical_text(a) for a in arts]
)
dates = np.array([a.published_at.timestamp() if a.published_at else np.nan for a in arts])


def fused(rows):
    base = V[rows] @ V.T + 0.7 * (X[rows] @ X.T).toarray()
    dd = np.abs(dates[rows][:, None] - dates[None, :]) / 86400.0
    return base + 0.2 * np.nan_to_num(np.exp(-dd / 3), nan=0.0)


for mode in ("full", "sem100", "union64", "union32"):
    nd = []
    for b in range(0, len(src), 512):
        rows = src[b : b + 512]
        S = fused(rows)
        S[np.arange(len(rows)), rows] = -np.inf
        if mode != "full":
            kk = int(mode.replace("sem", "").replace("union", ""))
            sem = V[rows] @ V.T
            sem[np.arange(len(rows)), rows] = -np.inf
            mask = np.zeros_like(S, dtype=bool)
            np.put_along_axis(mask, np.argpartition(-sem, kk, axis=1)[:, :kk], True, axis=1)
            if mode.startswith("union"):
                lx = (X[rows] @ X.T).toarray()
                lx[np.arange(len(rows)), rows] = -np.inf
                np.put_along_axis(mask, np.argpartition(-lx, kk, axis=1)[:, :kk], True, axis=1)
            S[~mask] = -np.inf
        top = np.argsort(-S, axis=1)[:, :5]
        for r, t5 in zip(rows, top, strict=False):
            nd.append(metrics.ndcg_at_k([slugs[i] for i in t5], rel.relevant(slugs[r]), 5))
    print(mode, round(float(np.mean(nd)), 4))
