"""The abp-linked set of docs/quality.md: from the 37 k archive, every article linked to a story
with another member in the archive, plus 1,500 distractors of the same topics (look-alike
events: same kind of news, another story), drawn with seed 0.

With STORIES and DISTRACTORS, a smaller sample of the same kind (issue 34, on a box too slow to
embed the whole subset): STORIES linked stories drawn with seed 0, every linked member of each,
and DISTRACTORS others from those stories' topics.

Usage: python docs/experiments/abp_linked_subset.py ARCHIVE.jsonl.gz OUT.jsonl [STORIES DISTRACTORS]
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from collections import Counter

with gzip.open(sys.argv[1], "rt", encoding="utf-8") as archive:
    records = [json.loads(line) for line in archive]
stories = Counter(r["labels"].get("neus_story_id") for r in records)
linked = [
    r
    for r in records
    if r["labels"].get("neus_story_id") and stories[r["labels"]["neus_story_id"]] >= 2
]
distractors = int(sys.argv[4]) if len(sys.argv) > 4 else 1500
if len(sys.argv) > 3:
    drawn = sorted({r["labels"]["neus_story_id"] for r in linked})
    random.Random(0).shuffle(drawn)
    kept = set(drawn[: int(sys.argv[3])])
    linked = [r for r in linked if r["labels"]["neus_story_id"] in kept]
slugs = {r["slug"] for r in linked}
topics = {r["labels"].get("topic") for r in linked}
others = [r for r in records if r["slug"] not in slugs and r["labels"].get("topic") in topics]
random.Random(0).shuffle(others)
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.writelines(json.dumps(r) + "\n" for r in linked + others[:distractors])
print(
    f"{len(linked)} linked + {min(distractors, len(others))} distractors from {len(topics)} topics"
)
