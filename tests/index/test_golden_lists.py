"""The served lists do not move when the ranking code is reorganised: related lists (version
neighbours, live articles scored on the spot, drafts) of the demo corpus and of a slice of
bbc-news, built with the hashing encoder, must equal those in `golden_lists.json`. The file was
first what the code before the signal registry gave (issue 29); it was regenerated when local
scaling became a default (issue 34), after checking that with `RECOMMENDER_LOCAL_SCALING=0` the
lists still equalled the file of issue 29.

The order of every list is exact; a score may differ from the file by one unit of its fourth
decimal: another CPU's floating-point kernels (AVX-512 or AVX2, the order of a sum) can round a
score on the other side of a boundary (seen: 0.66335 on an AMD EPYC).

Regenerate only for an intended change of ranking:
`PYTHONPATH=. python -m tests.index.test_golden_lists`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from index.serving.recommender_engine import Recommender
from index.serving.version_loader import load_recommender
from index.state.live_store import LiveStore
from index.versions.compact_catalog import BlockSizes
from recommender.articles import embedding_text, lexical_text, validate_record
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.ranking import RelatedQuery
from tests.support.helpers import REPO, SHARED, build_fake_index, build_in_blocks, require_shared

GOLDEN = Path(__file__).with_name("golden_lists.json")
DEMO = REPO / "demo" / "articles.jsonl"
BBC = SHARED / "data" / "bbc-news" / "articles.jsonl"
#: Every BBC_STEP-th article of bbc-news: a few hundred across its five categories.
BBC_STEP = 8
#: Demo articles left out of the build and upserted live instead.
LIVE = 20
DRAFTS = 10
#: When the drafts are written (the demo's articles are from 2021).
DRAFT_MOMENT = datetime.fromisoformat("2021-10-20T12:00:00+00:00").timestamp()
QUERY = RelatedQuery(limit=5)
Lists = dict[str, list[list[Any]]]


def _records(path: Path, step: int = 1) -> list[dict[str, Any]]:
    lines = require_shared(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[::step]]


#: How far a served score may be from the golden file's (one unit of its last, fourth, decimal).
SCORE_WITHIN = 1.5e-4


def _items(body: dict[str, Any], digits: int | None = 4) -> list[list[Any]]:
    """[slug, score] of each suggestion in order (scores rounded to `digits`; None: exact)."""
    items = body["items"]
    return [[i["slug"], i["score"] if digits is None else round(i["score"], digits)] for i in items]


def _same_list(served: list[list[Any]], golden: list[list[Any]]) -> bool:
    """The same slugs in the same order, each score within `SCORE_WITHIN` of the golden one."""
    return [slug for slug, _ in served] == [slug for slug, _ in golden] and all(
        abs(a - b) <= SCORE_WITHIN for (_, a), (_, b) in zip(served, golden, strict=True)
    )


def _drafts(recommender: Recommender, records: list[dict[str, Any]]) -> Lists:
    """The lists of each record's text as an unsaved draft (written at `DRAFT_MOMENT`)."""
    encoder = HashingEncoder()
    drafts: Lists = {}
    for record in records:
        article = validate_record({**record, "slug": "draft"}).article
        vector = encoder.encode([embedding_text(article)])[0]
        suggestions = recommender.related_to_draft(
            vector, lexical_text(article), QUERY, DRAFT_MOMENT
        )
        drafts[record["slug"]] = _items(recommender.body(None, suggestions))
    return drafts


def served_lists(workdir: Path) -> dict[str, Lists]:
    """Every list the golden file holds, computed with the code in the checkout."""
    encoder = HashingEncoder()
    out: dict[str, Lists] = {}

    bbc = _records(BBC, BBC_STEP)
    settings, _ = build_fake_index(workdir / "bbc", bbc)
    recommender, _ = load_recommender(settings.index)
    out["bbc"] = {r["slug"]: _items(recommender.answer(r["slug"], QUERY)) for r in bbc}
    out["bbc-drafts"] = _drafts(recommender, bbc[:DRAFTS])
    # Proper nouns and numbers weighed more: the TF-IDF fitted with names.
    settings, _ = build_fake_index(workdir / "bbc-names", bbc, name_boost=1.5)
    recommender, _ = load_recommender(settings.index)
    out["bbc-names"] = {r["slug"]: _items(recommender.answer(r["slug"], QUERY)) for r in bbc}

    demo = _records(DEMO)
    settings, _ = build_fake_index(workdir / "demo", demo)
    recommender, _ = load_recommender(settings.index)
    out["demo"] = {r["slug"]: _items(recommender.answer(r["slug"], QUERY)) for r in demo}
    out["demo-drafts"] = _drafts(recommender, demo[::30])

    built, live = demo[:-LIVE], demo[-LIVE:]
    settings, _ = build_fake_index(workdir / "demo-live", built)
    store = LiveStore.in_directory(settings.data_dir)
    try:
        for record in live:
            vector = encoder.encode([embedding_text(validate_record(record).article)])[0]
            store.upsert(record["slug"], record, encoder.model_id, vector)
    finally:
        store.close()
    recommender, _ = load_recommender(settings.index)
    sources = live + built[:LIVE]
    out["demo-live"] = {r["slug"]: _items(recommender.answer(r["slug"], QUERY)) for r in sources}
    return out


def test_served_lists_equal_the_golden_lists(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    served = served_lists(tmp_path)
    assert served.keys() == golden.keys()
    for part, lists in golden.items():
        changed = [s for s, items in lists.items() if not _same_list(served[part][s], items)]
        assert not changed, f"{part}: {len(changed)} list(s) changed, first {changed[0]}"
        assert served[part].keys() == lists.keys()


def test_a_build_in_tiny_blocks_with_its_texts_spilled_serves_the_lists_of_one_block(
    tmp_path: Path,
) -> None:
    """Every stage in blocks of 7 articles (the slice is ~280), every text put aside in the
    scratch file: the lists are those of a build in one block, to the last digit."""
    bbc = _records(BBC, BBC_STEP)
    tiny = BlockSizes(rows=7, spill_memory=1)
    for part, boost in (("bbc", 0.0), ("bbc-names", 1.5)):
        lists = []
        for settings, _ in (
            build_fake_index(tmp_path / f"{part}-one", bbc, name_boost=boost),
            build_in_blocks(tmp_path / f"{part}-tiny", bbc, tiny, name_boost=boost),
        ):
            recommender, _ = load_recommender(settings.index)
            answers = {r["slug"]: recommender.answer(r["slug"], QUERY) for r in bbc}
            lists.append({slug: _items(body, digits=None) for slug, body in answers.items()})
        one_block, tiny_blocks = lists
        assert tiny_blocks == one_block, part


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        lists = served_lists(Path(scratch))
    lines = [
        f"{json.dumps(part)}: {{\n"
        + ",\n".join(
            f"  {json.dumps(slug)}: {json.dumps(items)}" for slug, items in part_lists.items()
        )
        + "\n}"
        for part, part_lists in lists.items()
    ]
    GOLDEN.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    sys.exit(0)
