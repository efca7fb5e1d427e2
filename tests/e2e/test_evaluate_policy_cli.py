"""`recommender evaluate-policy` end to end: a served index (the synthetic corpus, fake model),
an impression log written by the real writer into the data directory's files or the shared
database, and the command's estimates, refusals and exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from api.event_log.event_log_factory import open_event_log
from api.event_log.event_log_writer import EventLogWriter
from api.event_log.logged_events import LoggedEvent
from api.event_log.policy_evaluation import reranked, served_ranking
from index.serving.version_loader import load_recommender
from index.state.postgres_database import PostgresState
from recommender.encoding.encoder_protocol import FAKE_MODEL
from recommender.settings import DatabaseSettings, Settings
from tests.support.helpers import build_fake_index, run_cli

SLOTS = 3


def recommender(
    *args: str, data_dir: Path, database_url: str | None
) -> subprocess.CompletedProcess[str]:
    env: dict[str, str | None] = {
        "RECOMMENDER_DATA_DIR": str(data_dir),
        "RECOMMENDER_MODEL": FAKE_MODEL,
    }
    return run_cli(*args, env=env | {"RECOMMENDER_DATABASE_URL": database_url})


def shown(
    slug: str, impression: str, items: list[str], propensity: list[float], at: float
) -> list[LoggedEvent]:
    """The impression records of a box on `slug` showing `items`."""
    return [
        LoggedEvent(
            "impression", at, slug, impression, position, target, "article-end", "default",
            "v1", p,
        )
        for position, (target, p) in enumerate(zip(items, propensity, strict=True), start=1)
    ]  # fmt: skip


def clicked(slug: str, impression: str, position: int, target: str, at: float) -> LoggedEvent:
    return LoggedEvent(
        "click", at + 5, slug, impression, position, target, "article-end", "default", "v1", None
    )


def write_log(settings: Settings, events: list[LoggedEvent], database_url: str | None) -> None:
    """`events` into the impression log through the service's writer."""
    postgres = (
        None if database_url is None else PostgresState(DatabaseSettings(database_url=database_url))
    )

    async def write() -> None:
        writer = EventLogWriter(open_event_log(settings.data_dir, postgres), settings.event_log)
        writer.start()
        writer.offer(events)
        await writer.stop()
        assert writer.written == len(events)

    try:
        asyncio.run(write())
    finally:
        if postgres is not None:
            postgres.close()


def day_of(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def log_served_boxes(settings: Settings, database_url: str | None) -> tuple[str, int, int]:
    """Three boxes per article, each the list the service serves it, a minute ago; the first
    slot of every second box clicked. Returns (day, impressions, clicks)."""
    served, _ = load_recommender(settings.index)
    ranking = served_ranking(served)
    now = time.time() - 60
    events: list[LoggedEvent] = []
    clicks = 0
    slugs = [card["slug"] for card in served.cards]
    for n, (slug, box) in enumerate((slug, box) for slug in slugs for box in range(3)):
        impression = f"box-{n:016d}"
        items = ranking(slug, SLOTS, now)
        events += shown(slug, impression, items, [1.0] * SLOTS, now)
        if box % 2 == 0:
            clicks += 1
            events.append(clicked(slug, impression, 1, items[0], now))
    write_log(settings, events, database_url)
    return day_of(now), 3 * len(slugs), clicks


@pytest.mark.parametrize("backend", ["files", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_served_ranking_is_estimated_at_its_ctr_and_an_unexplored_candidate_refused(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("postgres_url")) if backend == "postgres" else None
    settings, _ = build_fake_index(tmp_path / "data")
    day, impressions, clicks = log_served_boxes(settings, url)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return recommender(
            "evaluate-policy", "--since", day, *args, data_dir=settings.data_dir, database_url=url
        )

    done = run("--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["impressions"], result["clicks"], result["skipped"]) == (impressions, clicks, 0)
    current = result["policies"]["current"]
    ctr = clicks / impressions
    for estimator in ("ips", "snips", "dr"):
        assert current[estimator]["value"] == pytest.approx(ctr)
        assert current[estimator]["low"] < ctr < current[estimator]["high"]
    assert (current["ess"], current["support"]) == (pytest.approx(impressions), 1.0)

    refused = run("--candidate", "diversity=1.0 lexical_weight=9")
    assert refused.returncode == 65, refused.stderr
    assert refused.stdout == "" and refused.stderr.count("\n") == 1
    assert "lacks support" in refused.stderr
    assert "'diversity=1.0 lexical_weight=9'" in refused.stderr
    assert "RECOMMENDER_EXPLORATION" in refused.stderr

    candidate = "diversity=1.0 lexical_weight=9"
    partial = json.loads(run("--candidate", candidate, "--min-support", "0", "--json").stdout)
    estimated = partial["policies"][candidate]
    assert estimated["choices"] == SLOTS * impressions
    assert 0 < estimated["unsupported_choices"] <= estimated["choices"] * 0.95
    assert estimated["support"] == 1 - estimated["unsupported_choices"] / estimated["choices"]
    assert partial["policies"]["current"] == current
    table = run("--candidate", candidate, "--min-support", "0")
    assert table.returncode == 0, table.stderr
    header, columns, *rows = table.stdout.splitlines()
    assert f"{impressions} impressions" in header and f"{clicks} clicks" in header
    assert columns.split()[:3] == ["ranking", "support", "IPS"]
    assert rows[0].split()[:2] == ["current", "100.0%"]
    assert rows[1].startswith(f"{candidate}  ")
    assert f" {estimated['support']:.1%} " in rows[1] and len(rows) == 2

    elsewhere = run("--placement", "sidebar")
    assert elsewhere.returncode == 65 and "no impression to evaluate" in elsewhere.stderr


@pytest.mark.parametrize(
    ("candidate", "says"),
    [
        ("cache_ttl_seconds=5", "cache_ttl_seconds does not change the ranking"),
        ("name_boost=1", "name_boost is fixed when the index is built"),
        ("no_such_weight=1", "unknown setting 'no_such_weight'"),
        ("lexical_weight=-1", "greater than or equal to 0"),
        ("lexical_weight", "write each setting as NAME=VALUE"),
    ],
)
def test_a_candidate_that_is_not_a_ranking_is_one_line_and_exit_2(
    candidate: str, says: str, tmp_path: Path
) -> None:
    done = recommender(
        "evaluate-policy", "--since", "2026-12-01", "--candidate", candidate,
        data_dir=tmp_path, database_url=None,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and done.stderr.count("\n") == 1


def test_a_candidate_the_log_explored_is_estimated_from_its_own_boxes(tmp_path: Path) -> None:
    """A log that showed, for every article, the current list and the candidate's list half the
    time each (propensity 1 where they agree, 1/2 where they differ); readers clicked only the
    candidate's boxes, on each slot where they differ. Then IPS of each ranking is exactly the
    click-through of its own boxes: the candidate's, and 0 for the current one."""
    settings, _ = build_fake_index(tmp_path / "data")
    served, _ = load_recommender(settings.index)
    candidate = "diversity=1.0 lexical_weight=9"
    current = served_ranking(served)
    other = served_ranking(
        reranked(served, settings, settings.replaced(diversity=1.0, lexical_weight=9))
    )
    now = time.time() - 60
    events: list[LoggedEvent] = []
    candidate_clicks = 0
    slugs = [card["slug"] for card in served.cards]
    for n, slug in enumerate(slugs):
        ours, theirs = current(slug, SLOTS, now), other(slug, SLOTS, now)
        propensity = [1.0 if a == b else 0.5 for a, b in zip(ours, theirs, strict=True)]
        events += shown(slug, f"current-{n:08d}", ours, propensity, now)
        events += shown(slug, f"candidate-{n:08d}", theirs, propensity, now)
        for position, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
            if a != b:
                candidate_clicks += 1
                events.append(clicked(slug, f"candidate-{n:08d}", position, b, now))
    assert 0 < candidate_clicks < SLOTS * len(slugs)  # the lists differ, not everywhere
    write_log(settings, events, None)

    done = recommender(
        "evaluate-policy", "--since", day_of(now), "--candidate", candidate, "--json",
        data_dir=settings.data_dir, database_url=None,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["impressions"] == 2 * len(slugs)
    estimated = result["policies"][candidate]
    assert estimated["support"] == result["policies"]["current"]["support"] == 1.0
    assert estimated["ips"]["value"] == pytest.approx(candidate_clicks / len(slugs))
    assert estimated["ips"]["low"] < estimated["ips"]["value"] < estimated["ips"]["high"]
    assert result["policies"]["current"]["ips"]["value"] == 0.0
    assert estimated["ess"] < result["impressions"]
