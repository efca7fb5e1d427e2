"""Per-call time of the served related path (`Recommender.related`, the uncached work behind
`GET /v1/articles/{slug}/related`) under the settings in the environment. Best of 3 passes.

Usage: python docs/experiments/related_timing.py FEED  (RECOMMENDER_DATA_DIR: embedding cache)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from index.evaluation import prepare
from recommender.encoding.encoder_factory import load_encoder
from recommender.ranking import RelatedQuery
from recommender.settings import Settings

settings = Settings()
data = prepare(settings.index, [Path(sys.argv[1])], load_encoder(settings.encoder))
slugs = [article.slug for article in data.articles]
query = RelatedQuery(limit=5)
passes = []
for _ in range(3):
    start = time.perf_counter()
    for slug in slugs:
        data.recommender.related(slug, query)
    passes.append((time.perf_counter() - start) / len(slugs))
print(f"{len(slugs)} articles: {min(passes) * 1e6:.0f} µs per related call (best of 3)")
