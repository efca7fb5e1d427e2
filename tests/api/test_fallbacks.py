"""The fallback chain of related lists: once the candidates kept for a source run out, the
articles most clicked in its section over the last hours (from the impression log), then the
newest of its section, then the newest anywhere, fill the list, each item saying why; the
filters, blocks, retractions and embargo hold for them; per-placement chains; `off` keeps
lists as they were; both log backends feed the counts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.event_log.event_log_factory import open_event_log
from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import EventLog, LoggedEvent
from api.serving.popular_articles import PopularArticles, top_by_section
from console.main import app as cli
from index.serving.recommender_engine import Recommender
from index.serving.version_loader import load_recommender
from index.state.postgres_database import PostgresState
from recommender.ranking import RelatedQuery
from recommender.settings import DatabaseSettings, Settings
from tests.support.helpers import ADMIN_TOKEN, TOPICS, box_events, build_fake_index, wait_for

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RELATED = "/v1/articles/{}/related"
SOURCE = "volcano-0"
LIMIT = 12
NOW = time.time()
HOUR = 3600.0
#: One word of each article alone, so that no two are near-copies.
WORDS = [
    *("alder", "birch", "cedar", "dogwood", "elm", "fir"),
    *("ginkgo", "hazel", "juniper", "larch", "maple", "oak"),
]
SECTIONS = {"volcano": "world", "wildfire": "world", "football": "sport", "bitcoin": "business"}


def records() -> list[dict[str, Any]]:
    """Six articles of each of four topics; world holds two of them. Every article has its own
    date (a later one is newer), all in the past, plus one embargoed world article."""
    found = []
    for number, (topic, section) in enumerate(
        (topic, section) for topic, section in SECTIONS.items() for _ in range(6)
    ):
        index = number % 6
        published = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=number)
        found.append(
            {
                "slug": f"{topic}-{index}",
                "title": f"{topic.title()} {WORDS[index]} {WORDS[(index + 3) % 12]}",
                "summary": f"{TOPICS[topic]} {WORDS[index + 6]}",
                "body": f"{TOPICS[topic]} {WORDS[index]} {WORDS[index + 6]} {number}",
                "section": section,
                "published_at": published.isoformat(),
            }
        )
    found.append(
        {
            "slug": "embargoed-world",
            "title": "Embargoed world story",
            "summary": "Not yet",
            "body": "wildfire volcano embargoed",
            "section": "world",
            "published_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        }
    )
    return found


def build(tmp_path: Path, **overrides: Any) -> Settings:
    built, _ = build_fake_index(
        tmp_path / "data",
        records(),
        admin_token=ADMIN_TOKEN,
        redis_url=None,
        neighbours=8,
        **overrides,
    )
    return built


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return build(tmp_path, placement_fallbacks={"sidebar": "newest", "footer": "off"})


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def clicks(target: str, count: int, hours_ago: float, source: str = "bitcoin-0") -> list[Any]:
    """`count` clicks on `target`, `hours_ago` hours back, each of its own impression."""
    return [
        LoggedEvent(
            type="click",
            at=NOW - hours_ago * HOUR,
            source=source,
            impression=f"{target}-{hours_ago}-{n}".ljust(16, "x"),
            position=1,
            target=target,
            placement="default",
            arm="default",
            version="v1",
            propensity=None,
        )
        for n in range(count)
    ]


def recount(client: TestClient) -> PopularArticles:
    popular: PopularArticles = client.app.state.services.popular  # type: ignore[attr-defined]
    popular.recount()
    return popular


def served(client: TestClient) -> Recommender:
    recommender: Recommender = client.app.state.services.holder.require()  # type: ignore[attr-defined]
    return recommender


def candidates(recommender: Recommender, slug: str) -> set[str]:
    """The slugs of the candidates the version kept for `slug` (its related ones)."""
    rows = recommender.version.neighbour_ids[recommender.row_of(slug)]
    return {recommender.cards[int(row)]["slug"] for row in rows if row >= 0}


def newest_first(recommender: Recommender, section: str | None = None) -> list[str]:
    """Served, published slugs newest first (of `section` when given)."""
    cards = [
        recommender.cards[row]
        for row in range(len(recommender.cards))
        if recommender.cards[row]["slug"] != "embargoed-world"
    ]
    cards = [card for card in cards if section is None or card["section"] == section]
    return [card["slug"] for card in sorted(cards, key=lambda c: c["published_at"], reverse=True)]


def items(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get(RELATED.format(SOURCE), params={"limit": LIMIT, **params})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


def world_outside(recommender: Recommender) -> list[str]:
    """World articles that are not the source's candidates, newest first."""
    kept = candidates(recommender, SOURCE) | {SOURCE}
    return [slug for slug in newest_first(recommender, "world") if slug not in kept]


def test_a_source_with_few_candidates_gets_a_full_list_related_popular_newest(
    client: TestClient, settings: Settings
) -> None:
    recommender = served(client)
    outside = world_outside(recommender)
    assert len(outside) >= 3, "the corpus leaves world articles outside the candidates"
    most, second, old = outside[-1], outside[-2], outside[0]
    log = FileEventLog(settings.data_dir)
    log.write(
        [
            *clicks(most, 3, hours_ago=1),
            *clicks(second, 2, hours_ago=47),
            *clicks(old, 9, hours_ago=49),  # before the 48-hour window
            *clicks("football-1", 20, hours_ago=1),  # another section
        ]
    )
    recount(client)
    got = items(client)
    reasons = [item["reason"] for item in got]
    related = reasons.count("related")
    assert len(got) == LIMIT and related == 8
    assert reasons == ["related"] * related + ["popular"] * 2 + ["newest"] * (LIMIT - related - 2)
    slugs = [item["slug"] for item in got]
    assert set(slugs[:related]) == candidates(recommender, SOURCE)
    assert slugs[related : related + 2] == [most, second]
    shown = set(slugs[: related + 2]) | {SOURCE}
    newest = [s for s in newest_first(recommender, "world") if s not in shown]
    newest += [s for s in newest_first(recommender) if s not in shown and s not in newest]
    assert slugs[related + 2 :] == newest[: LIMIT - related - 2]
    assert len(set(slugs)) == LIMIT and SOURCE not in slugs
    assert list(got[0]) == [
        *("slug", "title", "url", "image", "summary", "section", "published_at", "score"),
        "reason",
    ]


def test_the_cli_answers_what_the_api_does_popular_articles_included(
    client: TestClient, settings: Settings
) -> None:
    """`recommender related` and `export-neighbours` count the log's clicks once and fill the
    same lists, with the same reasons, as a worker that counted them."""
    outside = world_outside(served(client))
    FileEventLog(settings.data_dir).write(clicks(outside[-1], 3, hours_ago=1))
    recount(client)
    api = items(client)
    assert "popular" in [item["reason"] for item in api]
    data_dir = ["--data-dir", str(settings.data_dir)]
    runner = CliRunner(env={"RECOMMENDER_MODEL": settings.encoder.model})
    shown = runner.invoke(cli, ["related", SOURCE, "--limit", str(LIMIT), "--json", *data_dir])
    assert shown.exit_code == 0, shown.output
    assert orjson.loads(shown.stdout)["items"] == api
    out = settings.data_dir.parent / "related.jsonl"
    exported = runner.invoke(
        cli, ["export-neighbours", "--limit", str(LIMIT), "--output", str(out), *data_dir]
    )
    assert exported.exit_code == 0, exported.output
    lines = {line["slug"]: line for line in map(orjson.loads, out.read_bytes().splitlines())}
    assert lines[SOURCE]["items"] == api


def test_without_clicks_the_newest_of_the_section_fill_first(client: TestClient) -> None:
    recommender = served(client)
    got = items(client)
    reasons = [item["reason"] for item in got]
    assert "popular" not in reasons
    slugs = [item["slug"] for item in got if item["reason"] == "newest"]
    outside = world_outside(recommender)
    assert slugs[: len(outside)] == outside
    assert all(
        recommender.cards[recommender.row_of(s)]["section"] != "world"
        for s in slugs[len(outside) :]
    )


def test_filters_blocks_retractions_and_embargo_hold_for_fallback_items(
    client: TestClient, settings: Settings
) -> None:
    recommender = served(client)
    outside = world_outside(recommender)
    blocked, retracted, excluded = outside[0], outside[1], outside[2]
    FileEventLog(settings.data_dir).write(
        [
            *clicks("embargoed-world", 50, hours_ago=1),
            *clicks(blocked, 40, hours_ago=1),
            *clicks(retracted, 30, hours_ago=1),
            *clicks(excluded, 20, hours_ago=1),
        ]
    )
    recount(client)
    before = [item["slug"] for item in items(client)]
    assert {blocked, retracted, excluded} <= set(before)
    assert "embargoed-world" not in before
    block = {"target": blocked, "reason": "off topic"}
    assert client.post(f"/v1/articles/{SOURCE}/blocks", json=block, headers=AUTH).is_success
    assert client.delete(f"/v1/articles/{retracted}", headers=AUTH).is_success
    got = [item["slug"] for item in items(client, exclude=excluded)]
    assert len(got) == LIMIT
    assert not {blocked, retracted, excluded, "embargoed-world", SOURCE} & set(got)
    old = [item["slug"] for item in items(client, max_age_days=30)]
    assert old == []  # every article is older than 30 days; only the embargoed one is not
    sport = items(client, section="sport")
    assert {item["section"] for item in sport} == {"sport"} and len(sport) == 6
    kept = {slug for slug in candidates(recommender, SOURCE) if slug.startswith("football")}
    assert {item["slug"] for item in sport if item["reason"] == "related"} == kept
    assert [item["reason"] for item in sport[len(kept) :]] == ["newest"] * (6 - len(kept))


def test_placements_have_their_own_chains(client: TestClient, settings: Settings) -> None:
    outside = world_outside(served(client))
    FileEventLog(settings.data_dir).write(clicks(outside[-1], 3, hours_ago=1))
    recount(client)
    default = [item["reason"] for item in items(client)]
    sidebar = [item["reason"] for item in items(client, placement="sidebar")]
    footer = items(client, placement="footer")
    assert "popular" in default
    assert "popular" not in sidebar and sidebar[-1] == "newest" and len(sidebar) == LIMIT
    assert all("reason" not in item for item in footer) and len(footer) == LIMIT


def test_off_answers_as_before_the_chain_existed(tmp_path: Path) -> None:
    """No `reason`, and the list filled by a wider search then the newest articles anywhere
    (with `off` the fill is the engine's own, the one `Recommender.answer` gives the CLI)."""
    settings = build(tmp_path, fallbacks="off")
    with TestClient(create_app(settings)) as client:
        response = client.get(RELATED.format(SOURCE), params={"limit": LIMIT})
        body = response.json()
        expected = served(client).answer(SOURCE, RelatedQuery(limit=LIMIT))
    assert body["items"] == expected["items"]
    assert all("reason" not in item for item in body["items"])
    assert len(body["items"]) == LIMIT


def test_the_fragment_marks_each_item_with_its_reason(
    client: TestClient, settings: Settings
) -> None:
    outside = world_outside(served(client))
    FileEventLog(settings.data_dir).write(clicks(outside[-1], 3, hours_ago=1))
    recount(client)
    expected = items(client)
    html = client.get(f"/v1/articles/{SOURCE}/related.html", params={"limit": LIMIT}).text
    for slot, item in enumerate(expected, start=1):
        marked = f'data-slot="{slot}" data-slug="{item["slug"]}" data-reason="{item["reason"]}"'
        assert marked in html
    footer = client.get(
        f"/v1/articles/{SOURCE}/related.html", params={"limit": LIMIT, "placement": "footer"}
    ).text
    assert "data-reason" not in footer and "data-slug" in footer


def open_log(backend: str, data_dir: Path, request: pytest.FixtureRequest) -> EventLog:
    if backend == "files":
        return open_event_log(data_dir, None)
    url = str(request.getfixturevalue("postgres_url"))
    postgres = PostgresState(DatabaseSettings(database_url=url))
    request.addfinalizer(postgres.close)
    return open_event_log(data_dir, postgres)


@pytest.mark.parametrize("backend", ["files", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_both_logs_count_the_clicks_of_the_window_into_the_table(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = build(tmp_path)
    log = open_log(backend, settings.data_dir, request)
    shown = LoggedEvent(**{**clicks("volcano-3", 1, 1)[0].record(), "type": "impression"})
    log.write(
        [
            *clicks("volcano-1", 2, hours_ago=2),
            *clicks("wildfire-4", 3, hours_ago=47.9),
            *clicks("volcano-2", 9, hours_ago=48.1),
            *clicks("football-1", 1, hours_ago=1),
            *clicks("retired-slug", 5, hours_ago=1),
            shown,
        ]
    )
    recommender, _ = load_recommender(settings.index)
    popular = PopularArticles(log, lambda: recommender, settings.fallbacks, clock=lambda: NOW)
    popular.recount()
    assert popular.by_section == {
        "world": ("wildfire-4", "volcano-1"),
        "sport": ("football-1",),
    }


def test_ties_go_to_the_newer_article_and_the_table_is_bounded(client: TestClient) -> None:
    recommender = served(client)
    counts = {f"volcano-{n}": 1 for n in range(6)} | {"wildfire-0": 2}
    table = top_by_section(recommender, counts)
    older_first = [f"volcano-{n}" for n in range(6)]
    assert table == {"world": ("wildfire-0", *reversed(older_first))}
    many = {f"volcano-{n}": n for n in range(6)}
    assert top_by_section(recommender, many, per_section=2) == {"world": ("volcano-5", "volcano-4")}


def test_a_readers_click_makes_an_article_popular_through_the_service(
    client: TestClient,
) -> None:
    """A box's beacons, accepted with its token, reach the log; the next recount makes the
    clicked newest item popular (asked again with another limit: the first list is cached)."""
    got = items(client)
    slot = [item["reason"] for item in got].index("newest") + 1
    clicked = got[slot - 1]["slug"]
    shown = box_events(client, SOURCE, limit=LIMIT)
    click = box_events(
        client, SOURCE, "click", [slot], limit=LIMIT, impression=shown[0]["impression"]
    )
    receipt = client.post("/v1/events", json={"events": [*shown, *click]}).json()
    assert receipt["accepted"] == LIMIT + 1
    writer = client.app.state.services.event_log  # type: ignore[attr-defined]
    wait_for(lambda: writer.pending() == 0, "the impression log's writer to catch up")
    assert recount(client).by_section == {"world": (clicked,)}
    after = items(client, limit=LIMIT - 1)
    assert after[slot - 1] == {**got[slot - 1], "reason": "popular"}


def test_an_exploring_list_draws_its_reserves_from_the_chain(client: TestClient) -> None:
    related = len(candidates(served(client), SOURCE))
    response = client.get(RELATED.format(SOURCE), params={"limit": related, "explore": "true"})
    body = response.json()
    assert [item["reason"] for item in body["items"]] == ["related"] * related
    reserves = body["reserves"]
    assert [item["reason"] for item in reserves] == ["newest"] * 3
    assert [item["slug"] for item in reserves] == world_outside(served(client))[:3]


class _DownLog(FileEventLog):
    """The data directory's log whose reads fail while `down` (a disk gone away)."""

    down = False

    def clicks_read_since(self, since: float) -> Iterator[LoggedEvent]:
        if self.down:
            raise OSError("the disk went away")
        return super().clicks_read_since(since)


def test_a_failed_recount_keeps_the_last_table_and_is_counted(
    client: TestClient, settings: Settings
) -> None:
    log = _DownLog(settings.data_dir)
    log.write(clicks("wildfire-5", 2, hours_ago=1))
    recommender = served(client)
    popular = PopularArticles(log, lambda: recommender, settings.fallbacks)
    popular.recount()
    assert popular.by_section == {"world": ("wildfire-5",)}

    async def run_until_it_fails() -> None:
        task = asyncio.create_task(popular.run())
        while not popular.failures:
            await asyncio.sleep(0.01)
        task.cancel()

    log.down = True
    asyncio.run(run_until_it_fails())
    assert popular.by_section == {"world": ("wildfire-5",)} and popular.recounts == 1
    served_popular = recount(client)
    metrics = client.get("/metrics").text
    assert f"recommender_popular_recounts_total {float(served_popular.recounts)}" in metrics
    assert "recommender_popular_recount_failures_total 0.0" in metrics


def test_a_near_copy_of_the_source_never_comes_back_as_a_fallback(tmp_path: Path) -> None:
    """A wire copy of the source, newest and most clicked in its section, stays out as it
    stays out of the related items."""
    source = next(record for record in records() if record["slug"] == SOURCE)
    copy = {**source, "slug": "volcano-wire-copy", "published_at": "2024-03-05T00:00:00+00:00"}
    settings, _ = build_fake_index(
        tmp_path / "data", [*records(), copy], redis_url=None, neighbours=8
    )
    FileEventLog(settings.data_dir).write(clicks(copy["slug"], 9, hours_ago=1))
    with TestClient(create_app(settings)) as client:
        assert recount(client).by_section["world"] == (copy["slug"],)
        got = items(client, limit=len(records()))
    assert len(got) == len(records()) - 2  # all but the source and the embargoed one
    assert copy["slug"] not in {item["slug"] for item in got}
    assert "popular" not in {item["reason"] for item in got}


def test_a_click_line_being_appended_is_counted_once_it_is_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not taken for a line a crashed writer left (which is skipped with a warning)."""
    log = FileEventLog(tmp_path)
    [click] = clicks("volcano-1", 1, hours_ago=1)
    log.write([click])
    line = orjson.dumps({**click.record(), "impression": "another-impression-id"})
    with log.path(click.day).open("ab") as file:
        file.write(line[:-9])  # a writer midway through its append
    assert [c.target for c in log.clicks_read_since(NOW - HOUR * 2)] == ["volcano-1"]
    assert "unreadable" not in caplog.text
    with log.path(click.day).open("ab") as file:
        file.write(line[-9:] + b"\n")
    assert [c.target for c in log.clicks_read_since(NOW - HOUR * 2)] == ["volcano-1"] * 2


class _ReadsRecorded(FileEventLog):
    """The data directory's log, noting from when each recount reads."""

    reads: list[float]

    def clicks_read_since(self, since: float) -> Iterator[LoggedEvent]:
        self.reads.append(since)
        return super().clicks_read_since(since)


def test_a_recount_reads_what_the_log_gained_and_clicks_leave_the_window_by_the_minute(
    tmp_path: Path,
) -> None:
    settings = build(tmp_path)
    log = _ReadsRecorded(settings.data_dir)
    log.reads = []
    log.write([*clicks("volcano-1", 4, hours_ago=47.5), *clicks("wildfire-4", 2, hours_ago=1)])
    recommender, _ = load_recommender(settings.index)
    clock = [NOW]

    def counting() -> PopularArticles:
        return PopularArticles(log, lambda: recommender, settings.fallbacks, lambda: clock[0])

    popular = counting()

    def fresh_count() -> dict[str | None, tuple[str, ...]]:
        again = counting()
        again.recount()
        return dict(again.by_section)

    popular.recount()
    assert popular.by_section == {"world": ("volcano-1", "wildfire-4")}
    assert log.reads == [NOW - 48 * HOUR]  # the first recount reads the window
    # One more click half a minute later; the next recount reads from five minutes before the
    # latest click counted (late writes), counting what it had read already once (wildfire-4:
    # 3 clicks, below volcano-1's 4; 5 if the two read again counted twice).
    log.write(clicks("wildfire-4", 1, hours_ago=-30 / HOUR))
    clock[0] = NOW + 60
    popular.recount()
    assert log.reads[-1] == NOW - HOUR - 300
    assert popular.by_section == {"world": ("volcano-1", "wildfire-4")} == fresh_count()
    # Half an hour on, volcano-1's clicks are 48 hours old and more: out of the window.
    clock[0] = NOW + 0.6 * HOUR
    popular.recount()
    assert popular.by_section == {"world": ("wildfire-4",)} == fresh_count()
    log.close()
