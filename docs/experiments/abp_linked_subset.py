"""The abp-linked set of docs/quality.md: from the 37 k archive, every article linked to a story
with another member in the archive, plus 1,500 distractors of the same topics (look-alike
events: same kind of news, another story), drawn with seed 0.

Usage: python docs/experiments/abp_linked_subset.py ARCHIVE.jsonl.gz OUT.jsonl
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
slugs = {r["slug"] for r in linked}
topics = {r["labels"].get("topic") for r in linked}
others = [r for r in records if r["slug"] not in slugs and r["labels"].get("topic") in topics]
random.Random(0).shuffle(others)
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.writelines(json.dumps(r) + "\n" for r in linked + others[:1500])
print(f"{len(linked)} linked + {min(1500, len(others))} distractors from {len(topics)} topics")
