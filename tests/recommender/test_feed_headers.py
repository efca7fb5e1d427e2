"""A feed whose header (or first keys) lacks a required field: one message, and `--map`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.errors import FeedError
from recommender.ingest.feeds import FeedReport, load_articles
from recommender.ingest.field_map import parse_field_map, rename
from recommender.ingest.options import ReadOptions


def write_rows(path: Path, header: str, rows: int) -> Path:
    path.write_text(
        header + "\n" + "".join(f"s{i},Headline {i},https://x.example/{i}\n" for i in range(rows))
    )
    return path


def test_csv_header_without_title_is_one_message_naming_the_columns(tmp_path: Path) -> None:
    feed = write_rows(tmp_path / "feed.csv", "slug,headline,link", 40)
    report = FeedReport()
    with pytest.raises(FeedError) as raised:
        load_articles([feed], report)
    assert str(raised.value) == (
        f"{feed}: no title column; found 'slug', 'headline', 'link'. "
        "Name them with --map NAME=FIELD (e.g. --map headline=title)"
    )
    assert report.read == 0 and report.bad == []


def test_csv_columns_are_renamed_by_the_map(tmp_path: Path) -> None:
    feed = write_rows(tmp_path / "feed.csv", "id,headline,link", 3)
    options = ReadOptions(field_map=parse_field_map(["id=slug", "headline=title", "link=url"]))
    articles = load_articles([feed], FeedReport(), options)
    first = articles["s0"]
    assert (first.title, first.url) == ("Headline 0", "https://x.example/0")
    assert len(articles) == 3


def test_jsonl_whose_first_records_lack_a_field_is_one_message(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    records = [{"id": f"s{i}", "headline": "H"} for i in range(40)]
    feed.write_text("".join(json.dumps(record) + "\n" for record in records))
    with pytest.raises(FeedError, match=rf"^{feed}: no slug and no title field in the first"):
        load_articles([feed], FeedReport())
    options = ReadOptions(field_map=parse_field_map(["id=slug", "headline=title"]))
    assert len(load_articles([feed], FeedReport(), options)) == 40


def test_jsonl_with_some_records_lacking_a_title_reports_those_records(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    records = [{"slug": "a", "title": "A"}, {"slug": "b"}, {"slug": "c", "title": "C"}]
    feed.write_text("".join(json.dumps(record) + "\n" for record in records))
    report = FeedReport()
    assert list(load_articles([feed], report)) == ["a", "c"]
    assert [str(problem) for problem in report.bad] == [f"{feed}:2: title is required"]


def test_json_array_file_is_refused_with_a_hint(tmp_path: Path) -> None:
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps([{"slug": "a", "title": "A"}], indent=2))
    with pytest.raises(FeedError, match=rf"^{feed}: holds a JSON array; JSON Lines is expected"):
        load_articles([feed], FeedReport())


def test_a_mapped_field_wins_over_one_already_so_named() -> None:
    record = {"headline": "New", "title": "Old", "body": "B"}
    assert rename(record, {"headline": "title"}) == {"title": "New", "body": "B"}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["headline"], "expected NAME=FIELD"),
        (["=title"], "expected NAME=FIELD"),
        (["headline=headline"], "'headline' is no article field"),
    ],
)
def test_bad_map_arguments_are_refused(pairs: list[str], message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse_field_map(pairs)
