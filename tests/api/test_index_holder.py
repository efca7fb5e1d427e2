"""The holder of the served version: swaps and live changes racing each other."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from api.serving.index_holder import IndexHolder
from index.versions.reindex_pipeline import reindex
from recommender.articles import embedding_text, validate_record
from recommender.encoding.hashing_encoder import HashingEncoder
from tests.support.helpers import build_fake_index, synthetic_records, wait_for, write_jsonl

ENCODER = HashingEncoder()


class LiveWriter(threading.Thread):
    """Publishes live corrections through the holder, as `PUT /v1/articles/{slug}` does (store
    write, then `require`), as fast as it can until stopped."""

    def __init__(self, holder: IndexHolder) -> None:
        super().__init__(daemon=True)
        self.holder = holder
        self.applied = 0
        self.failure: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                record = {"slug": f"live-{self.applied % 5}", "title": f"Live story {self.applied}"}
                article = validate_record(record).article
                vector = ENCODER.encode([embedding_text(article)])[0]
                self.holder.live.upsert(article.slug, record, ENCODER.model_id, vector)
                self.holder.require()
                self.applied += 1
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def wait_for_more(self, count: int) -> None:
        target = self.applied + count
        wait_for(lambda: self.applied >= target, f"{count} more live changes applied")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def test_a_live_change_applied_across_a_swap_never_brings_the_older_version_back(
    tmp_path: Path,
) -> None:
    records = synthetic_records()
    settings, _ = build_fake_index(tmp_path / "data", records, redis_url=None)
    holder = IndexHolder(settings.index)
    asyncio.run(holder.refresh())
    writer = LiveWriter(holder)
    writer.start()
    try:
        for round_number in range(25):
            records[0]["title"] = f"Volcano story number 0, revision {round_number}"
            feed = write_jsonl(tmp_path / "nightly.jsonl", records)
            published = reindex(settings.index, [feed], ENCODER).version
            assert asyncio.run(holder.refresh()), "the new version was not swapped in"
            writer.wait_for_more(3)
            served = holder.require().version.id
            assert served == published, f"round {round_number}: {served} came back"
    finally:
        writer.stop()
        holder.close()
    assert writer.failure is None, repr(writer.failure)
