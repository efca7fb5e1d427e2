"""The archive of `recommender bench archive`: real full texts copied up to N articles.

The full-text sets of the shared data (`FULL_TEXT_SETS`) are read in passes, one record at a
time, and written to one JSON Lines feed until it holds N articles: the first pass as they are,
every later pass as copies with small changes (a sentence dropped, two of the first sentences
swapped, so that the embedded lead differs too; a slug of its own; a publication date drawn
over 2000 to 2026). Nothing is held in memory but one record and a fixed-size sample of slugs, so
N can be a million or more.

A nightly feed is the previous feed with a share of the articles edited (a revision line in
front of the body, and a sentence dropped) and a few new ones added at its end.
"""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.report import BenchError
from recommender.articles import canonical_slug

#: The full-text sets of ../shared/data (headline-and-teaser and 1987-newswire sets are left out).
FULL_TEXT_SETS = (
    "allsides-abp-37k/articles.jsonl.gz",
    "bbc-news/articles.jsonl",
    "basil-triplets/articles.jsonl",
)
#: What a copy keeps of a record (labels and authors are not part of an article's card).
KEPT_FIELDS = ("title", "body", "url", "category", "section", "source", "published_at")
#: A sentence ends at ., ! or ? followed by white space (kept, so paragraphs stay paragraphs).
SENTENCE_END = re.compile(r"(?<=[.!?])(\s+)")
#: Copies' publication dates are drawn over these years (all in the past: no embargo).
DATES_FROM = datetime(2000, 1, 1, tzinfo=UTC)
DATES_SPAN_SECONDS = int((datetime(2026, 11, 1, tzinfo=UTC) - DATES_FROM).total_seconds())
#: Swapped sentences are drawn among the first few, so that a copy's embedded lead differs.
LEAD_SENTENCES = 4
#: Of the articles changed for the nightly run, one in this many is new rather than edited.
NEW_SHARE = 10


@dataclass(frozen=True, slots=True)
class Catalog:
    """A written archive feed."""

    path: Path
    articles: int
    base_texts: int
    """Distinct real articles it was copied from."""
    slugs: list[str]
    """A uniform random sample of its slugs (for load with random slugs)."""


@dataclass(frozen=True, slots=True)
class NightlyChange:
    """The nightly feed: `edited` articles of the catalog edited, `added` new ones."""

    path: Path
    edited: int
    added: int

    @property
    def changed(self) -> int:
        return self.edited + self.added


def missing_sets(data: Path) -> list[Path]:
    """The full-text sets that `data` (the shared data folder) lacks."""
    return [data / name for name in FULL_TEXT_SETS if not (data / name).is_file()]


def _lines(path: Path) -> Iterator[bytes]:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as packed:
            yield from packed
    else:
        with path.open("rb") as plain:
            yield from plain


def base_records(sources: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """The records of `sources` with a slug, a title and a body, one at a time."""
    for source in sources:
        for line in _lines(source):
            if not line.strip():
                continue
            record = orjson.loads(line)
            if record.get("slug") and record.get("title") and record.get("body"):
                yield record


def _sentences(body: str) -> tuple[list[str], list[str]]:
    parts = SENTENCE_END.split(body)
    return parts[0::2], parts[1::2]


def _join(sentences: Sequence[str], separators: Sequence[str]) -> str:
    text = sentences[0]
    for separator, sentence in zip(separators, sentences[1:], strict=False):
        text += separator + sentence
    return text


def drop_sentence(body: str, rng: random.Random) -> str:
    """`body` without one of its sentences (drawn), when it has at least three."""
    sentences, separators = _sentences(body)
    if len(sentences) < 3:
        return body
    row = rng.randrange(len(sentences))
    del sentences[row]
    del separators[min(row, len(separators) - 1)]
    return _join(sentences, separators)


def swap_sentences(body: str, rng: random.Random) -> str:
    """`body` with two of its first `LEAD_SENTENCES` sentences swapped, when it has two."""
    sentences, separators = _sentences(body)
    if len(sentences) < 2:
        return body
    first, second = rng.sample(range(min(len(sentences), LEAD_SENTENCES)), 2)
    sentences[first], sentences[second] = sentences[second], sentences[first]
    return _join(sentences, separators)


def published_at(rng: random.Random) -> str:
    """A publication date drawn uniformly over `DATES_FROM` and the following years."""
    moment = DATES_FROM + timedelta(seconds=rng.randrange(DATES_SPAN_SECONDS))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def copy_record(record: dict[str, Any], copy: int, rng: random.Random) -> dict[str, Any]:
    """Copy number `copy` of a real record: the record itself (with a date) for 0, else changed.

    Slugs are written as the service keeps them (`canonical_slug`); copies get `SLUG--cN` and,
    where the record has a URL, `URL#cN`.
    """
    slug, _ = canonical_slug(record["slug"])
    kept = {key: record[key] for key in KEPT_FIELDS if record.get(key)}
    if copy == 0:
        kept.setdefault("published_at", published_at(rng))
        return {"slug": slug, **kept}
    suffix = f"c{copy}"
    kept["body"] = swap_sentences(drop_sentence(kept["body"], rng), rng)
    kept["published_at"] = published_at(rng)
    if "url" in kept:
        kept["url"] = f"{kept['url']}#{suffix}"
    return {"slug": f"{slug}--{suffix}", **kept}


def write_catalog(
    sources: Sequence[Path], path: Path, articles: int, rng: random.Random, sample: int
) -> Catalog:
    """Write `articles` records copied from `sources` to `path` (see the module)."""
    slugs: list[str] = []
    written = base_texts = 0
    with path.open("wb") as out:
        for copy in range(articles):  # a pass over the sources per copy; ends far sooner
            for record in base_records(sources):
                if copy == 0:
                    base_texts += 1
                article = copy_record(record, copy, rng)
                out.write(orjson.dumps(article) + b"\n")
                # reservoir sampling: every slug written so far is in `slugs` with equal chance
                if len(slugs) < sample:
                    slugs.append(article["slug"])
                elif (kept := rng.randrange(written + 1)) < sample:
                    slugs[kept] = article["slug"]
                written += 1
                if written == articles:
                    rng.shuffle(slugs)
                    return Catalog(path, written, base_texts, slugs)
            if base_texts == 0:
                break
    raise BenchError(f"{', '.join(map(str, sources))} hold no article with a title and a body")


def revised(record: dict[str, Any], revision: str, rng: random.Random) -> dict[str, Any]:
    """An edited article: a revision line in front of its body (so that its embedded text
    changes, and differs from every other edit's) and one of its sentences dropped."""
    body = drop_sentence(record["body"], rng)
    return {**record, "body": f"This article was revised (revision {revision}).\n{body}"}


def write_nightly(
    catalog: Catalog, path: Path, share: float, rng: random.Random, night: int = 1
) -> NightlyChange:
    """The catalog with `share` of its articles changed on night `night`: most edited, one in
    `NEW_SHARE` new (slugs `SLUG--newN`, follow-ups of the first articles).

    At least one article changes when `share` is above 0. Unchanged lines are copied as bytes.
    """
    changed = max(1, round(catalog.articles * share)) if share > 0 else 0
    added = changed // NEW_SHARE if changed >= NEW_SHARE else min(changed, 1)
    edited_rows = set(rng.sample(range(catalog.articles), changed - added))
    new_records = []
    with catalog.path.open("rb") as source, path.open("wb") as out:
        for row, line in enumerate(source):
            if row < added:  # the new ones are follow-ups of the first articles
                record = orjson.loads(line)
                body = swap_sentences(drop_sentence(record["body"], rng), rng)
                new_records.append(
                    {
                        **record,
                        "slug": f"{record['slug']}--new{night}",
                        "body": f"A follow-up ({night}.{row + 1}).\n{body}",
                        "published_at": published_at(rng),
                        **({"url": f"{record['url']}#new{night}"} if "url" in record else {}),
                    }
                )
            if row in edited_rows:
                out.write(orjson.dumps(revised(orjson.loads(line), f"{night}.{row}", rng)) + b"\n")
            else:
                out.write(line)
        for record in new_records:
            out.write(orjson.dumps(record) + b"\n")
    return NightlyChange(path, len(edited_rows), added)
