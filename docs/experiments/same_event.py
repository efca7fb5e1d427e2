"""Same-event detection beyond near-duplicates: how often a served list holds two reports of
one story, and what collapsing them at a lower cosine threshold does to nDCG@5.

For each `near_duplicate` threshold (a suggestion whose cosine to the source or to an earlier
pick reaches it is dropped; 0.98 is served, 1.0 keeps all but exact copies), the `default`
strategy is scored on the feed, and the share of lists in which two suggestions share a label
value (two reports of one story, on story-labelled sets) is counted.

Usage: python docs/experiments/same_event.py FEED LABEL  (RECOMMENDER_DATA_DIR: embedding cache)
"""

from __future__ import annotations

import dataclasses
import itertools
import sys

from common import load

from index.evaluation import evaluate
from recommender.ranking import RelatedQuery

THRESHOLDS = (1.0, 0.98, 0.95, 0.9, 0.85, 0.8)

experiment = load(sys.argv[1], sys.argv[2])
data, slugs, relevance = experiment.data, experiment.slugs, experiment.relevance
base_policy = data.policy
print("| near_duplicate | ndcg@5 | lists with two reports of one story |")
print("|---|---|---|")
for threshold in THRESHOLDS:
    data.policy = dataclasses.replace(base_policy, near_duplicate=threshold)
    data.__dict__.pop("recommender", None)  # rebuilt with the new policy
    ndcg = evaluate(data, relevance, strategies=["default"])["results"]["default"]["ndcg_at_k"]
    doubled = 0
    for row in experiment.sources.tolist():
        picks = [s.row for s in data.recommender.related(slugs[row], RelatedQuery(limit=5))]
        doubled += any(
            slugs[b] in relevance.relevant(slugs[a]) for a, b in itertools.combinations(picks, 2)
        )
    print(f"| {threshold} | {ndcg:.4f} | {doubled / len(experiment.sources):.3f} |")
