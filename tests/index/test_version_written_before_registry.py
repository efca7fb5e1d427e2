"""A version written before the signal registry (issue 29), kept on disk under
`version_before_registry/`, loads and serves as it did: the same lists, drafts and
explanations as the code that wrote it gave (`answers.json` beside it).

Written by `PYTHONPATH=. python -m tests.index.test_version_written_before_registry` with that
code; never regenerate it with later code, which would defeat its purpose.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from index.serving.recommender_engine import Recommender
from index.serving.version_loader import load_recommender
from recommender.articles import embedding_text, lexical_text, validate_record
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.ranking import RelatedQuery
from tests.support.helpers import REPO, build_fake_index, fake_settings

FIXTURE = Path(__file__).with_name("version_before_registry")
ANSWERS = FIXTURE / "answers.json"
#: The first demo articles, with their dates (the time signal weighs).
ARTICLES = 60
QUERY = RelatedQuery(limit=5)
#: When the drafts are written (the demo's articles are from 2021).
DRAFT_MOMENT = 1_634_731_200.0


def _records() -> list[dict[str, Any]]:
    lines = (REPO / "demo" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:ARTICLES]]


def answers(recommender: Recommender) -> dict[str, Any]:
    """What the version serves: every list, a few drafts, and each list's explanations."""
    encoder = HashingEncoder()
    lists: dict[str, Any] = {}
    why: dict[str, Any] = {}
    for card in recommender.version.cards:
        slug = card["slug"]
        suggestions = recommender.related(slug, QUERY)
        lists[slug] = [[recommender.card(s.row)["slug"], round(s.score, 4)] for s in suggestions]
        row = recommender.row_of(slug)
        why[slug] = [recommender.explain(row, s.row) for s in suggestions]
    drafts: dict[str, Any] = {}
    for record in _records()[::6]:
        article = validate_record({**record, "slug": "draft"}).article
        vector = encoder.encode([embedding_text(article)])[0]
        suggestions = recommender.related_to_draft(
            vector, lexical_text(article), QUERY, DRAFT_MOMENT
        )
        drafts[record["slug"]] = [
            [recommender.card(s.row)["slug"], round(s.score, 4)] for s in suggestions
        ]
    return {"lists": lists, "drafts": drafts, "why": why}


def test_a_version_written_before_the_registry_serves_as_it_did(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(FIXTURE / "data", data_dir)
    recommender, warning = load_recommender(fake_settings(data_dir).index)
    assert warning is None
    assert answers(recommender) == json.loads(ANSWERS.read_text(encoding="utf-8"))


if __name__ == "__main__":
    shutil.rmtree(FIXTURE, ignore_errors=True)
    FIXTURE.mkdir()
    settings, _summary = build_fake_index(FIXTURE / "data", _records())
    (FIXTURE / "data-feed.jsonl").unlink()
    # Only the version and CURRENT: the caches and stores are made afresh by whoever loads it.
    for path in (FIXTURE / "data").iterdir():
        if path.is_file() and path.name != "CURRENT":
            path.unlink()
    recommender, _ = load_recommender(settings.index)
    ANSWERS.write_text(json.dumps(answers(recommender), indent=1) + "\n", encoding="utf-8")
    sys.exit(0)
