"""Ranker step 7: does embedding long bodies in chunks (mean of chunk vectors) beat
title + summary + lead? Semantic strategy only, nDCG@5.

Usage: python docs/experiments/chunked_bodies.py FEED LABEL
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from index.evaluation import evaluate, prepare
from recommender.articles import embedding_text
from recommender.encoding.encoder_factory import load_encoder
from recommender.encoding.encoder_protocol import normalise_rows
from recommender.evaluation.relevance import LabelRelevance
from recommender.settings import Settings

ds, field = sys.argv[1], sys.argv[2]
s = Settings()
enc = load_encoder(s.encoder)
data = prepare(s.index, [Path(ds)], enc)
rel = LabelRelevance.from_articles(data.articles, field)
base = evaluate(data, rel, strategies=["semantic"])["results"]["semantic"]["ndcg_at_k"]
CH = 1000
texts, owner = [], []
for i, a in enumerate(data.articles):
    body = a.body or ""
    chunks = [embedding_text(a)] + [body[j : j + CH] for j in range(1200, min(len(body), 6000), CH)]
    texts += chunks
    owner += [i] * len(chunks)
vec = enc.encode(texts)
owner = np.array(owner)
mean = np.zeros_like(data.vectors)
np.add.at(mean, owner, vec)
data.vectors[:] = normalise_rows(mean)
chunked = evaluate(data, rel, strategies=["semantic"])["results"]["semantic"]["ndcg_at_k"]
print(f"{ds}: semantic lead-only {base:.4f}")
print(f"mean of chunks (lead + up to 5 x 1000 chars) {chunked:.4f} ({len(texts)} texts)")
