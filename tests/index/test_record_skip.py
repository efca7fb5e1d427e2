"""A nightly run skips the records it read before (issue 30, point 2): a JSON Lines record whose
bytes the served version was built from is carried over unparsed, and the run's output and feed
report are exactly those of a run that parses every record."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from index.serving.version_loader import load_current
from index.versions.manifest import MANIFEST_NAME
from index.versions.reindex_pipeline import ReindexSummary, reindex
from index.versions.version_store import VersionStore
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.ingest.feeds import FeedReport
from recommender.ingest.options import SourceChoices
from recommender.settings import Settings
from tests.support.helpers import cli_reindex, fake_settings, synthetic_records

NEIGHBOURS = 8
#: The first records of a file are always parsed: they stand in for its header.
HEAD = 10

Feeds = dict[str, list[str]]


def _lines(records: list[dict[str, Any]], **dump: Any) -> list[str]:
    return [json.dumps(record, **dump) + "\n" for record in records]


def _catalog() -> list[dict[str, Any]]:
    records = synthetic_records(per_topic=8)  # 48 articles in six topics
    for record in records[20:30]:  # naive times: taken as UTC, with a note each
        record["published_at"] = record["published_at"].removesuffix("Z")
    return records


def _write(directory: Path, feeds: Feeds) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, lines in feeds.items():
        path = directory / name
        path.write_text("".join(lines), encoding="utf-8")
        paths.append(path)
    return paths


def _run(
    settings: Settings, feeds: Feeds, name: str, *, full: bool = False, **choices: Any
) -> tuple[ReindexSummary, FeedReport]:
    report = FeedReport()
    sources = _write(settings.data_dir.parent / name, feeds)
    summary = reindex(
        settings.index,
        sources,
        HashingEncoder(),
        full=full,
        report=report,
        choices=SourceChoices(**choices),
    )
    return summary, report


def _report(report: FeedReport, name: str) -> dict[str, Any]:
    """What a run told about its records, with its feeds' directory left out of the locations."""

    def located(problems: list[Any]) -> list[str]:
        return [str(problem).replace(f"/{name}/", "/") for problem in problems]

    return {
        "read": report.read,
        "bad": located(report.bad),
        "notes": located(report.notes),
        "duplicates": located(report.duplicates),
    }


def _version_files(settings: Settings) -> dict[str, bytes]:
    """Every file of the served version but its manifest (which names the version and time)."""
    path = VersionStore(settings.data_dir).current_path()
    return {
        file.name: file.read_bytes()
        for file in sorted(path.iterdir())
        if file.is_file() and file.name != MANIFEST_NAME
    }


def _nights(records: list[dict[str, Any]]) -> tuple[Feeds, Feeds]:
    """A first night's feeds and the next night's: one line changed, one removed, one added,
    a bad line, slugs repeated within and across the files, the rest byte for byte the same."""
    first_a, first_b = _lines(records[:40]), _lines(records[40:])
    first_b.append(first_a[15])  # the same record again in the other file: replaces itself
    first_a.insert(30, json.dumps({**records[31], "title": "An earlier draft"}) + "\n")
    second_a = list(first_a)
    second_a[12] = json.dumps({**records[12], "body": records[12]["body"] + " lava"}) + "\n"
    del second_a[25]
    second_a.insert(33, "{not json\n")
    second_b = [*first_b, json.dumps({**records[5], "slug": "volcano-new"}) + "\n"]
    second_b.insert(2, json.dumps({**records[42], "title": "Replaced later"}) + "\n")
    return {"a.jsonl": first_a, "b.jsonl": first_b}, {"a.jsonl": second_a, "b.jsonl": second_b}


def test_a_nightly_run_carries_unchanged_records_over_and_builds_what_parsing_all_builds(
    tmp_path: Path,
) -> None:
    records = _catalog()
    first, second = _nights(records)
    nightly = fake_settings(tmp_path / "nightly", neighbours=NEIGHBOURS)
    _, report = _run(nightly, first, "first")
    assert report.recalled == 0
    summary, report = _run(nightly, second, "second")
    assert summary.rebuild == "incremental" and summary.published
    # The lines the served version was built from (a repeated slug's last), met again past
    # each file's header sample.
    built_from = {json.loads(line)["slug"]: line for lines in first.values() for line in lines}
    unchanged = [
        line for lines in second.values() for line in lines[HEAD:] if line in built_from.values()
    ]
    assert report.recalled == len(unchanged) > 20
    # The reference: the same two nights, with the first night's lines written differently
    # (same records, other bytes), so that the second run recognises none and parses all.
    parsed = fake_settings(tmp_path / "parsed", neighbours=NEIGHBOURS)
    reformatted = {
        name: [json.dumps(json.loads(line), indent=None, separators=(",", ":")) + "\n"
               for line in lines]
        for name, lines in first.items()
    }  # fmt: skip
    _run(parsed, reformatted, "first")
    expected, expected_report = _run(parsed, second, "second")
    assert expected_report.recalled == 0
    assert _report(report, "second") == _report(expected_report, "second")
    assert report.notes and report.duplicates and report.bad
    assert (summary.read, summary.bad, summary.indexed) == (
        expected.read,
        expected.bad,
        expected.indexed,
    )
    reason = summary.rebuild_reason.split(" since ")[0]
    assert reason == expected.rebuild_reason.split(" since ")[0]
    assert _version_files(nightly) == _version_files(parsed)


def test_a_byte_order_mark_is_no_part_of_the_record_it_starts(tmp_path: Path) -> None:
    lines = _lines(_catalog())
    settings = fake_settings(tmp_path / "data", neighbours=NEIGHBOURS)
    _run(settings, {"a.jsonl": ["\ufeff" + lines[0], *lines[1:]]}, "first")
    # The first record again, on line 12: with its mark there it is not JSON, as always.
    moved = [*lines[1:12], "\ufeff" + lines[0], *lines[12:], lines[0]]
    _, report = _run(settings, {"a.jsonl": moved}, "second")
    assert [problem.line for problem in report.bad] == [12]
    assert report.recalled == len(lines) - 1 - HEAD + 1  # the last line: the first record


def test_records_are_parsed_again_when_the_field_renames_change(tmp_path: Path) -> None:
    records = [{**record, "kicker": f"Kicker {i}"} for i, record in enumerate(_catalog())]
    feeds = {"a.jsonl": _lines(records)}
    settings = fake_settings(tmp_path / "data", neighbours=NEIGHBOURS)
    _run(settings, feeds, "first")
    _, report = _run(settings, feeds, "second", field_map={"kicker": "summary"})
    assert report.recalled == 0
    version = load_current(settings.index)[0]
    assert version.cards[30]["summary"] == "Kicker 30"


def test_full_and_a_missing_cache_parse_the_records_again(tmp_path: Path) -> None:
    records = _catalog()
    feeds = {"a.jsonl": _lines(records)}
    settings = fake_settings(tmp_path / "data", neighbours=NEIGHBOURS)
    _run(settings, feeds, "first")
    before = load_current(settings.index)[0].cards[:]
    changed = {"a.jsonl": _lines([{**records[0], "title": "Volcano: corrected"}, *records[1:]])}
    _, report = _run(settings, changed, "full", full=True)
    assert report.recalled == 0
    _, report = _run(settings, feeds, "back")  # the first night's bytes: recognised again
    assert report.recalled == len(records) - HEAD
    assert load_current(settings.index)[0].cards[:] == before
    # Texts no cache holds any more cannot be carried: they are needed to embed again.
    settings.index.embedding_cache_path.unlink()
    _, report = _run(settings, changed, "uncached")
    assert report.recalled == 0 and report.read == len(records)
    assert load_current(settings.index)[0].cards[0]["title"] == "Volcano: corrected"


@pytest.mark.parametrize("point", ["reindex-read", "reindex-staged"])
def test_a_run_killed_after_carrying_records_over_leaves_the_served_version_untouched(
    tmp_path: Path, point: str
) -> None:
    records = _catalog()
    data_dir = tmp_path / "data"
    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(_lines(records)), encoding="utf-8")
    first = cli_reindex(data_dir, feed, RECOMMENDER_NEIGHBOURS=str(NEIGHBOURS))
    assert first.returncode == 0, first.stderr
    settings = fake_settings(data_dir, neighbours=NEIGHBOURS)
    before = _version_files(settings)
    feed.write_text("".join(_lines([{**records[0], "title": "Volcano: corrected"}, *records[1:]])))
    killed = cli_reindex(data_dir, feed, point=point, RECOMMENDER_NEIGHBOURS=str(NEIGHBOURS))
    assert killed.returncode == -signal.SIGKILL, f"{point} was not reached:\n{killed.stderr}"
    assert load_current(settings.index)[0].id == json.loads(first.stdout)["version"]
    assert _version_files(settings) == before
    # The same bytes again: carried over as the killed run would have, and published.
    report = FeedReport()
    again = reindex(settings.index, [feed], HashingEncoder(), report=report)
    assert again.published and report.recalled == len(records) - HEAD
    reference = fake_settings(tmp_path / "reference", neighbours=NEIGHBOURS)
    _run(reference, {"feed.jsonl": feed.read_text().splitlines(keepends=True)}, "ref", full=True)
    assert load_current(settings.index)[0].cards[:] == load_current(reference.index)[0].cards[:]
