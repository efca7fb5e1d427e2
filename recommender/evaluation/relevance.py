"""Ground truth for the offline evaluation: which articles are relevant to which.

Either a label the feed carries (articles sharing `labels.FIELD`, or a top-level field such as
`category`, are relevant to each other; a list-valued label counts when any value is shared),
or a qrels file (`source_slug<TAB>related_slug<TAB>grade`).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from recommender.articles import Article, canonical_slug
from recommender.errors import FeedError, InvalidRecord


class Relevance(Protocol):
    """Relevant articles (slug → grade) of a source; empty when the source has none."""

    def relevant(self, source: str) -> dict[str, float]: ...


def _label_values(article: Article, field: str) -> frozenset[str]:
    labels = article.metadata.get("labels")
    value: object = None
    if isinstance(labels, dict) and field in labels:
        value = labels[field]
    elif field in article.metadata:
        value = article.metadata[field]
    elif field in {"section", "author", "language"}:
        value = getattr(article, field)
    elif field == "tags":
        value = list(article.tags)
    if value is None or value == "":
        return frozenset()
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(v) for v in value if v is not None and v != "")
    return frozenset({str(value)})


@dataclass
class LabelRelevance:
    """Articles sharing a value of one label are relevant (grade 1) to each other."""

    values: dict[str, frozenset[str]]
    members: dict[str, frozenset[str]]
    _groups: dict[frozenset[str], frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_articles(cls, articles: Sequence[Article], field: str) -> LabelRelevance:
        values = {a.slug: _label_values(a, field) for a in articles}
        members: dict[str, set[str]] = defaultdict(set)
        for slug, labels in values.items():
            for label in labels:
                members[label].add(slug)
        return cls(values, {label: frozenset(slugs) for label, slugs in members.items()})

    def relevant(self, source: str) -> dict[str, float]:
        labels = self.values.get(source, frozenset())
        group = self._groups.get(labels)
        if group is None:  # sources share label sets, so groups are built once each
            group = frozenset().union(*(self.members[label] for label in labels))
            self._groups[labels] = group
        return {slug: 1.0 for slug in group if slug != source}


@dataclass
class QrelsRelevance:
    """Relevance judgements read from a TSV file."""

    judgements: dict[str, dict[str, float]]

    @classmethod
    def from_file(cls, path: Path) -> QrelsRelevance:
        judgements: dict[str, dict[str, float]] = defaultdict(dict)
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
                    if not row or row[0].startswith("#"):
                        continue
                    source, target, grade = _qrel(row, path, number)
                    if grade > 0:
                        judgements[source][target] = grade
        except OSError as exc:
            raise FeedError(f"{path}: cannot read qrels ({exc.strerror})") from exc
        return cls(dict(judgements))

    def relevant(self, source: str) -> dict[str, float]:
        return self.judgements.get(source, {})


def _qrel(row: list[str], path: Path, number: int) -> tuple[str, str, float]:
    if len(row) != 3:
        raise FeedError(f"{path}:{number}: expected source<TAB>related<TAB>grade")
    try:
        source, _ = canonical_slug(row[0])
        target, _ = canonical_slug(row[1])
        grade = float(row[2])
    except (InvalidRecord, ValueError) as exc:
        raise FeedError(f"{path}:{number}: {exc}") from None
    return source, target, grade
