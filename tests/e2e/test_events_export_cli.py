"""`recommender events export`: the impression log of some days, from the data directory's
files or the shared database, as JSON Lines or Parquet; wrong dates are one line and exit 2."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from api.event_log.event_log_factory import open_event_log
from index.state.postgres_database import PostgresState
from recommender.settings import DatabaseSettings
from tests.e2e.test_db_cli import recommender
from tests.support.event_log_records import click, impression


def fill(data_dir: Path, database_url: str | None) -> None:
    postgres = (
        None if database_url is None else PostgresState(DatabaseSettings(database_url=database_url))
    )
    log = open_event_log(data_dir, postgres)
    log.write([*impression("box-0000000000000001"), click("box-0000000000000001", 3)])
    log.write(impression("box-0000000000000002", day=date(2026, 12, 8)))
    log.write(impression("box-0000000000000003", day=date(2026, 12, 9)))
    if postgres is not None:
        postgres.close()


@pytest.mark.parametrize("backend", ["files", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_export_writes_the_days_asked_for_in_both_formats(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("postgres_url")) if backend == "postgres" else None
    data_dir = tmp_path / "data"
    fill(data_dir, url)
    days = ["--since", "2026-12-06", "--until", "2026-12-08", "--data-dir", str(data_dir)]
    lines = tmp_path / "events.jsonl"
    done = recommender(
        "events", "export", *days, "--format", "jsonl", "--output", str(lines), database_url=url
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["exported"] == 7
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [(r["impression"][-1], r["type"], r["position"]) for r in rows] == [
        ("1", "impression", 1), ("1", "impression", 2), ("1", "impression", 3), ("1", "click", 3),
        ("2", "impression", 1), ("2", "impression", 2), ("2", "impression", 3),
    ]  # fmt: skip
    table = tmp_path / "events.parquet"
    done = recommender(
        "events", "export", *days, "--format", "parquet", "--output", str(table), database_url=url
    )
    assert done.returncode == 0, done.stderr
    back = pq.read_table(table).to_pylist()
    for row in back:
        row["at"] = row["at"].isoformat().replace("+00:00", "Z")
    assert back == rows


def test_export_refuses_dates_it_cannot_read_in_one_line(tmp_path: Path) -> None:
    output = tmp_path / "x.jsonl"
    for bad, says in (
        (["--since", "yesterday"], "--since 'yesterday' is not a date"),
        (["--since", "2026-12-08", "--until", "2026-12-01"], "is before --since"),
    ):
        done = recommender(
            "events", "export", *bad, "--output", str(output), "--data-dir", str(tmp_path),
            database_url=None,
        )  # fmt: skip
        assert done.returncode == 2
        assert says in done.stderr and done.stderr.count("\n") == 1
    assert not output.exists()
