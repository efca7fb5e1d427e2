"""The term-count cache: analyses by text hash, kept apart by kind, written whole or not at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.state.term_count_cache import TermCountCache
from recommender.articles import text_hash
from recommender.tfidf import TextTerms, analyse
from tests.support.helpers import REPO, wait_for

TEXTS = [f"Story {n} from Valparaiso: {n} boats, harbour closed" for n in range(6)]


def test_analyses_come_back_as_stored_and_each_kind_apart(tmp_path: Path) -> None:
    cache = TermCountCache(tmp_path / "terms.sqlite3")
    try:
        hashes = [text_hash(text) for text in TEXTS]
        with_names = [analyse(text, names=True) for text in TEXTS]
        cache.put_many(True, zip(hashes, with_names, strict=True))
        assert cache.get_many(True, hashes) == dict(zip(hashes, with_names, strict=True))
        assert cache.get_many(False, hashes) == {}  # an analysis without names is another kind
    finally:
        cache.close()


def test_a_batch_interrupted_midway_stores_nothing_of_it(tmp_path: Path) -> None:
    cache = TermCountCache(tmp_path / "terms.sqlite3")
    hashes = [text_hash(text) for text in TEXTS]
    cache.put_many(False, [(hashes[0], analyse(TEXTS[0], names=False))])

    def interrupted() -> Iterator[tuple[str, TextTerms]]:
        for hashed, text in zip(hashes[1:4], TEXTS[1:4], strict=True):
            yield hashed, analyse(text, names=False)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.put_many(False, interrupted())
    cache.put_many(False, [(hashes[5], analyse(TEXTS[5], names=False))])  # still usable
    cache.close()
    reopened = TermCountCache(tmp_path / "terms.sqlite3")
    try:
        assert set(reopened.get_many(False, hashes)) == {hashes[0], hashes[5]}
    finally:
        reopened.close()


#: A writer that commits one batch, then stops for good in the middle of the next.
WRITER = """
import sys, time
from pathlib import Path
from index.state.term_count_cache import TermCountCache
from recommender.tfidf import TextTerms

cache = TermCountCache(Path(sys.argv[1]))
cache.put_many(False, [("committed", TextTerms(["harbour"], [1], None))])

def batch():
    yield "first-half", TextTerms(["boats"], [2], None)
    Path(sys.argv[2]).touch()
    time.sleep(600)
    yield "second-half", TextTerms(["closed"], [1], None)

cache.put_many(False, batch())
"""


def test_a_run_killed_mid_write_leaves_no_half_written_batch(tmp_path: Path) -> None:
    path, stopped = tmp_path / "terms.sqlite3", tmp_path / "stopped"
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(path), str(stopped)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        wait_for(stopped.exists, "the writer to stop inside its second batch", timeout=60)
        reader = TermCountCache(path)
        try:  # while the batch is open, another process reads only what was committed
            assert set(reader.get_many(False, ["committed", "first-half"])) == {"committed"}
        finally:
            reader.close()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    after_crash = TermCountCache(path)
    try:
        stored = after_crash.get_many(False, ["committed", "first-half", "second-half"])
        assert stored == {"committed": TextTerms(["harbour"], [1], None)}
    finally:
        after_crash.close()


CONCURRENT_WRITER = """
import sys
from pathlib import Path
from index.state.term_count_cache import TermCountCache
from recommender.tfidf import TextTerms

prefix = sys.argv[2]
cache = TermCountCache(Path(sys.argv[1]))
for batch in range(20):  # overlapping keys ("shared-…") and each writer's own
    cache.put_many(False, [
        *((f"shared-{batch}-{n}", TextTerms(["harbour"], [n + 1], None)) for n in range(25)),
        *((f"{prefix}-{batch}-{n}", TextTerms([prefix], [n + 1], None)) for n in range(25)),
    ])
cache.close()
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    """A reindex and an evaluation (or two hosts' runs) may fill one cache at the same moment."""
    path = tmp_path / "terms.sqlite3"
    TermCountCache(path).close()  # the schema exists before both start
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CONCURRENT_WRITER), str(path), prefix],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for prefix in ("left", "right")
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    cache = TermCountCache(path)
    try:
        for prefix in ("left", "right", "shared"):
            keys = [f"{prefix}-{batch}-{n}" for batch in range(20) for n in range(25)]
            stored = cache.get_many(False, keys)
            assert len(stored) == len(keys), prefix
            assert all(
                terms.counts == [int(key.rsplit("-", 1)[1]) + 1] for key, terms in stored.items()
            )
    finally:
        cache.close()
