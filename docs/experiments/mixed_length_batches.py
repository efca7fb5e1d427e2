"""What ordering a chunk's texts by length saves the embed stage (docs/scaling.md, "The embed
stage"): the first N articles of a JSON Lines feed (BBC's, say), every other one cut to its
title and summary, so that summaries and full texts mix; encoded with the default encoder one
batch per call, as the pipeline calls it, in feed order and then longest first; each twice.

Usage: python docs/experiments/mixed_length_batches.py FEED [N]
"""

import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recommender.encoding.encoder_factory import load_encoder
from recommender.settings import Settings

count = int(sys.argv[2]) if len(sys.argv) > 2 else 256
with Path(sys.argv[1]).open("rb") as feed:
    records = [orjson.loads(line) for line, _ in zip(feed, range(count), strict=False)]
texts = [
    f"{record['title']}. {record.get('summary') or ''}"
    if row % 2
    else f"{record['title']}. {record['body']}"
    for row, record in enumerate(records)
]
encoder = load_encoder(Settings().encoder)
encoder.encode(texts[: encoder.batch_size])  # warm up


def seconds(ordered: list[str]) -> float:
    started = time.perf_counter()
    for start in range(0, len(ordered), encoder.batch_size):
        encoder.encode(ordered[start : start + encoder.batch_size])
    return time.perf_counter() - started


longest_first = sorted(texts, key=len, reverse=True)
for _ in range(2):
    print(f"feed order {seconds(texts):.2f} s, longest first {seconds(longest_first):.2f} s")
