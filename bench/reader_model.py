"""The simulated readers of `recommender bench learning`: who reads which article, and which
suggestion they click.

A position-based click model (Craswell et al. 2008; Chuklin, Markov and de Rijke, "Click Models
for Web Search", 2015): a reader of `source` clicks the item `target` shown at slot k with
probability

    scale x examination(k) x relevance(source, target) x attractiveness(target)

- examination(k) = 1 / k: readers look at the first slot, half as often at the second, and so
  on, the fall-off that eye-tracking and click-log studies of ranked lists report;
- relevance from the catalog's real labels: 1 for another report of the same story, 0.5 for an
  article of the same topic (the feed's category), 0.2 for anything else;
- attractiveness: a hidden per-article appeal, log-normal with mean 1 and log-spread `spread`
  (what a headline or a picture adds that the text does not say): what clicks can teach and
  content cannot;
- scale: set once so that the content-only box is clicked on `target_ctr` of the impressions.

Which article a reader is on follows a Zipf law (the k-th most read article gets 1/k of the
views), over a random order of the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SAME_STORY = 1.0
SAME_TOPIC = 0.5
UNRELATED = 0.2


@dataclass(frozen=True, slots=True)
class LabelledArticle:
    slug: str
    story: str
    topic: str | None


class Readers:
    """The click model over one catalog, for one seed and spread."""

    def __init__(
        self, articles: Sequence[LabelledArticle], spread: float, rng: np.random.Generator
    ) -> None:
        self.slugs = [article.slug for article in articles]
        self._story = {article.slug: article.story for article in articles}
        self._topic = {article.slug: article.topic for article in articles}
        appeal = rng.lognormal(-spread * spread / 2, spread, len(articles))
        self.attractiveness: dict[str, float] = dict(zip(self.slugs, appeal.tolist(), strict=True))
        order = rng.permutation(len(articles))
        weights = 1.0 / (np.argsort(order) + 1.0)
        self.traffic = weights / weights.sum()
        self.scale = 1.0

    def relevance(self, source: str, target: str) -> float:
        if self._story[source] == self._story[target]:
            return SAME_STORY
        topic = self._topic[source]
        return SAME_TOPIC if topic is not None and topic == self._topic[target] else UNRELATED

    def probability(self, source: str, target: str, slot: int) -> float:
        """The chance that a reader of `source` clicks `target` shown at `slot` (from 1)."""
        appeal = self.relevance(source, target) * self.attractiveness[target]
        return min(1.0, self.scale * appeal / slot)

    def expected_clicks(self, source: str, shown: Sequence[str]) -> float:
        """Clicks a box of `source` that shows `shown` gets on average."""
        return sum(self.probability(source, target, slot) for slot, target in enumerate(shown, 1))

    def calibrate(self, lists: Mapping[str, Sequence[str]], target_ctr: float) -> None:
        """Set `scale` so that boxes showing `lists` (source -> list) are clicked on
        `target_ctr` of the impressions, readers spread as `traffic`; the cap at 1 is ignored
        (no probability comes near it at the click rates of news boxes)."""
        self.scale = 1.0
        per_source = np.array([self.expected_clicks(slug, lists[slug]) for slug in self.slugs])
        self.scale = target_ctr / float(per_source @ self.traffic)

    def source_of(self, rng: np.random.Generator) -> str:
        return self.slugs[int(rng.choice(len(self.slugs), p=self.traffic))]
