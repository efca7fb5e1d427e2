"""Ranker step 3: re-scoring a semantic candidate pool vs scoring the whole catalog (nDCG@5).

Usage: python docs/experiments/candidate_pool.py FEED LABEL
"""

import sys

import numpy as np
from common import load

from recommender.evaluation import metrics

experiment = load(sys.argv[1], sys.argv[2])
V = experiment.data.vectors
X = experiment.tfidf
dates = experiment.dates
src = experiment.sources
slugs = experiment.slugs
rel = experiment.relevance


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
