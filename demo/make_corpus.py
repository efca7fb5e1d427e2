"""Rebuild demo/articles.jsonl from ../shared/data/allsides-neus-stories (kept for provenance).

The demo corpus is 100 whole stories (300 articles) whose every article has a date and an
outlet, spread evenly over the dataset's stories so that many topics appear.

    python demo/make_corpus.py ../shared/data/allsides-neus-stories/articles.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

STORIES = 100


def main(source: Path, target: Path) -> None:
    stories: dict[str, list[dict[str, object]]] = defaultdict(list)
    with source.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            stories[record["labels"]["story_id"]].append(record)
    complete = [
        story_id
        for story_id, members in sorted(stories.items())
        if len(members) == 3
        and all(m["published_at"] and m["source"] and m["title"] and m["url"] for m in members)
    ]
    step = len(complete) / STORIES
    chosen = [complete[int(i * step)] for i in range(STORIES)]
    with target.open("w", encoding="utf-8") as out:
        for story_id in chosen:
            for member in stories[story_id]:
                labels = member["labels"]
                assert isinstance(labels, dict)
                article = {
                    "slug": member["slug"],
                    "title": member["title"],
                    "summary": member["body"],
                    "url": member["url"],
                    "section": member["category"],
                    # The source gives dates only: noon UTC keeps the same date in nearly
                    # every time zone, and says which zone it is (no "no time zone" notes).
                    "published_at": f"{member['published_at']}T12:00:00Z",
                    "source": member["source"],
                    "labels": {"story_id": story_id, "bias_text": labels.get("bias_text")},
                }
                out.write(json.dumps(article, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_name("articles.jsonl"))
