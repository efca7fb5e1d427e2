"""What the name boost costs: TF-IDF fit over a feed (part of every reindex) and one draft's
transform (part of every `POST /v1/related`), without and with the boost. Best of 3 runs.

Usage: python docs/experiments/lexical_cost.py FEED
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recommender.articles import lexical_text
from recommender.ingest.feeds import FeedReport, load_articles
from recommender.tfidf import TfidfModel

texts = [lexical_text(a) for a in load_articles([Path(sys.argv[1])], FeedReport()).values()]
draft = max(texts, key=len)
for boost in (0.0, 1.0):
    fits, drafts = [], []
    for _ in range(3):
        start = time.perf_counter()
        model, _ = TfidfModel.fit(texts, name_boost=boost)
        fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(100):
            model.transform([draft])
        drafts.append((time.perf_counter() - start) / 100)
    print(
        f"name_boost {boost}: fit {len(texts)} texts {min(fits):.2f} s, "
        f"one draft of {len(draft)} chars {min(drafts) * 1000:.2f} ms"
    )
