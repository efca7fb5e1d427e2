"""The per-request cost of the click signal (docs/learning.md, "The click signal"): the demo
corpus indexed with the fake model into DIR, click evidence for every source's first five
slots (20 impressions each, one in seven clicked), then `related()` for every article three
times at weight 0, at weight 1, and at weight 1 without statistics (the re-scoring alone).

Usage: PYTHONPATH=. python docs/experiments/click_signal_timing.py DIR
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import orjson

from api.event_log.logged_events import LoggedEvent
from index.serving.recommender_engine import Recommender
from index.serving.version_loader import load_recommender
from recommender.click_statistics import ClickTally
from recommender.ranking import RelatedQuery
from tests.support.helpers import build_fake_index

QUERY = RelatedQuery(limit=5)

lines = Path("demo/articles.jsonl").read_text(encoding="utf-8").splitlines()
settings, _ = build_fake_index(Path(sys.argv[1]), [orjson.loads(line) for line in lines if line])
served, _ = load_recommender(settings.index)
slugs = [card["slug"] for card in served.cards]
now = time.time()
tally = ClickTally(settings.clicks.half_life_days, now)
events = []
for i, slug in enumerate(slugs):
    for slot, suggestion in enumerate(served.related(slug, QUERY), start=1):
        target = served.cards[suggestion.row]["slug"]
        for n in range(20):
            shown = LoggedEvent(
                "impression", now, slug, f"box-{i}-{n}", slot, target, "default", "default",
                "v1", 1.0,
            )  # fmt: skip
            events.append(shown)
            if (n + slot + i) % 7 == 0:
                events.append(LoggedEvent(**{**shown.record(), "type": "click"}))
tally.add(events)
clicks = tally.statistics(now, settings.clicks.prior_clicks)
weighted, _ = load_recommender(settings.replaced(click_weight=1.0).index)


def timed(name: str, recommender: Recommender) -> None:
    times = []
    for _ in range(3):
        for slug in slugs:
            start = time.perf_counter()
            recommender.related(slug, QUERY)
            times.append(time.perf_counter() - start)
    times.sort()
    print(
        f"{name}: related() median {statistics.median(times) * 1e3:.3f} ms, "
        f"p99 {times[int(len(times) * 0.99)] * 1e3:.3f} ms"
    )


print(f"{len(slugs)} articles, {tally.events} events")
timed("weight 0", served.with_clicks(clicks))
timed("weight 1", weighted.with_clicks(clicks))
timed("weight 1, no statistics (the re-scoring alone)", weighted)
