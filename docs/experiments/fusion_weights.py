"""Ranker step experiments 0-2: semantic vs TF-IDF fusion weights vs time proximity (nDCG@5).

Usage: python docs/experiments/fusion_weights.py FEED LABEL  (RECOMMENDER_DATA_DIR: embedding cache)
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


def evaluate(score_fn, name):
    nd = []
    for b in range(0, len(src), 512):
        rows = src[b : b + 512]
        S = score_fn(rows)
        S[np.arange(len(rows)), rows] = -np.inf
        top = np.argsort(-S, axis=1)[:, :5]
        for r, t5 in zip(rows, top, strict=False):
            nd.append(metrics.ndcg_at_k([slugs[i] for i in t5], rel.relevant(slugs[r]), 5))
    print(f"{name:40s} ndcg@5 {np.mean(nd):.4f}")


def sem(rows):
    return V[rows] @ V.T


def lex(rows):
    return (X[rows] @ X.T).toarray()


evaluate(sem, "semantic")
evaluate(lex, "tfidf")
for w in (0.3, 0.5, 0.7, 1.0):
    evaluate(lambda rows, w=w: V[rows] @ V.T + w * (X[rows] @ X.T).toarray(), f"sem+{w}*tfidf")


def zs(M):
    return (M - M.mean(1, keepdims=True)) / (M.std(1, keepdims=True) + 1e-9)


evaluate(lambda rows: zs(V[rows] @ V.T) + zs((X[rows] @ X.T).toarray()), "z-hybrid")
for tau in (1, 3, 7):
    for tw in (0.05, 0.1, 0.2):

        def f(rows, tau=tau, tw=tw):
            base = V[rows] @ V.T + 0.5 * (X[rows] @ X.T).toarray()
            dd = np.abs(dates[rows][:, None] - dates[None, :]) / 86400.0
            prox = np.exp(-dd / tau)
            prox = np.nan_to_num(prox, nan=0.0)
            return base + tw * prox

        evaluate(f, f"sem+0.5tfidf+time tau{tau} w{tw}")
