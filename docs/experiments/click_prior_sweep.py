"""How the click signal's prior and weight trade the story labels' nDCG@5 for clicks, and how
fast they learn (docs/learning.md, "Quality on the labels"). One seed of `recommender bench
learning` at one spread (240 articles, 4 days of 3,000 boxes, its learned arm ranking with the
prior and weight of before 2026-12-08, 5 and 1.0); then, over the log that run made, for each
prior and weight:
- the lift of days 2-4: the click model's expected clicks per box (traffic-weighted) of the
  click-aware ranking with the clicks counted before each of those days began, less the
  content-only ranking's; their mean is what the bench's learned arm gains after day 1,
  without the noise of simulated clicks;
- the fall of nDCG@5 on the story labels with every click logged (the bench's (e)).

Usage: python docs/experiments/click_prior_sweep.py SPREAD SEED [PRIORS] [WEIGHTS]
(PRIORS and WEIGHTS comma-separated; by default 5,10,20,50 and 0.1,0.2,0.3,0.5)
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["RECOMMENDER_CLICK_PRIOR_CLICKS"] = "5"  # the learned arm's, while the days run

from bench import learning_bench as bench
from recommender.click_statistics import ClickTally

spread, seed = float(sys.argv[1]), int(sys.argv[2])
priors = [float(p) for p in (sys.argv[3] if len(sys.argv) > 3 else "5,10,20,50").split(",")]
weights = [float(w) for w in (sys.argv[4] if len(sys.argv) > 4 else "0.1,0.2,0.3,0.5").split(",")]
scenario = bench.Scenario(240, 4, 3000, 1, (spread,), 1.0, forged=0)

with tempfile.TemporaryDirectory(prefix="click-prior-sweep-") as work:
    built = Path(work) / "built" / "data"
    built.parent.mkdir()
    records, _ = bench.labelled_catalog(bench.NEUS, scenario.articles)
    bench.build_catalog(records, built)
    data_dir = Path(work) / "run" / "data"
    shutil.copytree(built, data_dir)
    run = bench.simulate_days(scenario, spread, seed, data_dir)
    events = bench.logged_events(run.settings, run.started)
    now = time.time()

    def clicks_per_box(ranking: Any) -> float:
        readers = run.readers
        return float(
            sum(
                share * readers.expected_clicks(slug, ranking(slug, bench.LIMIT, now))
                for slug, share in zip(readers.slugs, readers.traffic, strict=True)
            )
        )

    def ndcg(ranking: Any) -> float:
        return bench.story_ndcg(ranking, run.labels, now)

    content = bench.learned_ranking(run.settings, 0.0, None)
    content_clicks, content_ndcg = clicks_per_box(content), ndcg(content)
    print(f"spread {spread} seed {seed}: {len(events)} events logged")
    print(f"content only: nDCG@5 {content_ndcg:.4f}, expected clicks per box {content_clicks:.4f}")
    for prior in priors:
        counts = []
        for until in [*run.day_starts[1:], now]:
            tally = ClickTally(run.settings.clicks.half_life_days, until)
            tally.add(event for event in events if event.at < until)
            counts.append(tally.statistics(until, prior))
        for weight in weights:
            lifts = [
                clicks_per_box(bench.learned_ranking(run.settings, weight, before)) - content_clicks
                for before in counts[:-1]
            ]
            fall = content_ndcg - ndcg(bench.learned_ranking(run.settings, weight, counts[-1]))
            print(
                f"prior {prior:g}, weight {weight:g}: lift days 2-4 {np.mean(lifts):+.4f} "
                f"({' '.join(f'{lift:+.4f}' for lift in lifts)}), nDCG@5 fall {fall:+.4f}"
            )
