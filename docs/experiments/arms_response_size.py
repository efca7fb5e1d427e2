"""What an A/B experiment costs a related list asked for with `explore=true` (docs/learning.md,
"A/B experiments"): its JSON bytes, and the time to compute it on a cache miss, with no
experiment, 2 arms and 3 arms, over the synthetic corpus (30 articles a topic) indexed with the fake
model in DIR (each source once per round, best of 5 rounds).

Usage: PYTHONPATH=. python docs/experiments/arms_response_size.py DIR
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from api.serving.experiment_arms import ExperimentArms, experiment_of
from api.serving.feedback_tokens import FeedbackSigner
from api.serving.related_answers import experiment_body, related_body
from index.serving.version_loader import load_recommender
from index.state.experiment_store import StoredExperiment
from index.state.state_stores import open_stores
from recommender.ranking import RelatedQuery
from tests.support.helpers import build_fake_index, synthetic_records

settings, _ = build_fake_index(Path(sys.argv[1]), synthetic_records(30), redis_url=None)
served, _ = load_recommender(settings.index)
signer = FeedbackSigner(b"k" * 32, 24)
sources = [served.cards[row]["slug"] for row in range(len(served.cards))]
query, hour = RelatedQuery(limit=4), signer.hour()
stores = open_stores(settings.index)
arms = ExperimentArms(stores.experiment, settings)
EXPERIMENTS = {
    "no experiment": None,
    "2 arms (diversity)": [
        {"name": "holdout", "share": 0.5},
        {"name": "b", "share": 0.5, "settings": {"diversity": 0.3}},
    ],
    "3 arms (diversity, lexical_weight)": [
        {"name": "holdout", "share": 0.4},
        {"name": "b", "share": 0.3, "settings": {"diversity": 0.3}},
        {"name": "c", "share": 0.3, "settings": {"lexical_weight": 1.2}},
    ],
}
for label, given in EXPERIMENTS.items():
    experiment = None if given is None else experiment_of(StoredExperiment(1, given), settings)
    best, size = float("inf"), 0
    for _ in range(5):
        start = time.perf_counter()
        total = 0
        for slug in sources:
            if experiment is None:
                body = related_body(signer, served, slug, query, hour, share=500)
            else:
                pairs = list(zip(experiment.arms, arms.rankers(served, experiment), strict=True))
                body = experiment_body(signer, pairs, slug, query, hour, "default", None)
            total += len(orjson.dumps(body))
        best = min(best, (time.perf_counter() - start) / len(sources))
        size = total // len(sources)
    print(f"{label}: {size} bytes, {best * 1000:.2f} ms per cache miss")
stores.close()
