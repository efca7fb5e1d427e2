"""The click signal through the service: at weight 0 lists and ETags are what they were; with
weight, an item readers clicked far above its slot's average moves up and the ETag follows
each new count; a worker's refresh adds accepted beacons without a restart (forged ones never
reach the log); the editors' page says how often readers clicked; the nightly recount's file
is where workers start; a refresh swapping while requests read breaks none."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import LoggedEvent
from api.serving.click_counts import FILE, ClickCounts, recount_to_file
from api.serving.index_holder import IndexHolder
from index.serving.version_loader import load_recommender
from recommender.click_statistics import ClickStatistics
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from tests.api.test_editor_pages import log_in
from tests.support.helpers import ADMIN_TOKEN, box_events, build_fake_index, wait_for

SOURCE = "volcano-0"
LIMIT = 5
BEACON = {"Content-Type": "text/plain;charset=UTF-8"}
PASSWORD = "correct horse"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The prior of a small site: the boxes these tests log are strong evidence against it.
    built, _ = build_fake_index(
        tmp_path / "data",
        admin_token=ADMIN_TOKEN,
        editor_password=PASSWORD,
        redis_url=None,
        click_prior_clicks=5.0,
    )
    return built


def started(settings: Settings) -> TestClient:
    client = TestClient(create_app(settings), follow_redirects=False)
    client.__enter__()
    counts = counter(client)
    wait_for(lambda: counts.refreshes > 0, "the first count of clicks")
    return client


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    client = started(settings)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture
def weighted(settings: Settings) -> Iterator[TestClient]:
    client = started(settings.replaced(click_weight=1.0))
    yield client
    client.__exit__(None, None, None)


def counter(client: TestClient) -> ClickCounts:
    counts: ClickCounts = client.app.state.services.clicks  # type: ignore[attr-defined]
    return counts


def holder(client: TestClient) -> IndexHolder:
    found: IndexHolder = client.app.state.services.holder  # type: ignore[attr-defined]
    return found


def related(client: TestClient) -> tuple[list[str], str, bytes]:
    response = client.get(f"/v1/articles/{SOURCE}/related", params={"limit": LIMIT})
    assert response.status_code == 200, response.text
    return (
        [item["slug"] for item in response.json()["items"]],
        response.headers["ETag"],
        (response.content),
    )


def readers_love(data_dir: Path, target: str, slot: int) -> None:
    """Log 400 new boxes of SOURCE: volcano-1 at slot 1 clicked a tenth of the time; at `slot`,
    in turns, `target` clicked half the time and another article never (twice the slot's
    average, and none of it), as the log keeps an accepted beacon's events."""
    other = "volcano-2" if target != "volcano-2" else "wildfire-2"
    events = []
    start = time.time()  # accepted just now, as a worker's refresh finds new events
    for n in range(400):
        box = f"box-{target}-{start:.6f}-{n}"
        shown = (
            (1, "volcano-1", n % 10 == 0),
            (slot, *((target, n % 4 == 0) if n % 2 == 0 else (other, False))),
        )
        for position, slug, clicked in shown:
            common: dict[str, Any] = {
                "at": start + n / 1000,
                "source": SOURCE,
                "impression": box,
                "position": position,
                "target": slug,
                "placement": "default",
                "arm": "default",
                "version": "v1",
            }
            events.append(LoggedEvent(type="impression", propensity=1.0, **common))
            if clicked:
                events.append(LoggedEvent(type="click", propensity=None, **common))
    FileEventLog(data_dir).write(events)


def test_at_weight_zero_lists_and_etags_do_not_change(
    client: TestClient, settings: Settings
) -> None:
    before, etag, body = related(client)
    last = before[-1]
    readers_love(settings.data_dir, last, LIMIT)
    statistics = counter(client).refresh()
    assert statistics.score(SOURCE, last) > 0.5  # strong evidence, counted
    served = holder(client).require()
    assert served.clicks is statistics
    after, etag_after, body_after = related(client)
    assert (after, etag_after, body_after) == (before, etag, body)
    # Computed afresh (no cache): the same list as a recommender that never saw a click.
    plain, _ = load_recommender(settings.index)
    query = RelatedQuery(limit=LIMIT)
    assert served.answer(SOURCE, query) == plain.answer(SOURCE, query)
    assert served.cache_tag == plain.cache_tag


def test_with_weight_a_much_clicked_item_moves_up_and_the_etag_follows(
    weighted: TestClient, settings: Settings
) -> None:
    before, etag, _ = related(weighted)
    last = before[-1]
    readers_love(settings.data_dir, last, LIMIT)
    counter(weighted).refresh()
    after, etag_after, _ = related(weighted)
    assert after.index(last) < before.index(last)
    assert etag_after != etag
    # The filters still hold: an excluded item stays out however clicked.
    excluded = weighted.get(
        f"/v1/articles/{SOURCE}/related", params={"limit": LIMIT, "exclude": last}
    ).json()
    assert last not in [item["slug"] for item in excluded["items"]]


def test_an_arm_that_weighs_clicks_gets_a_new_etag_with_each_new_count(
    client: TestClient, settings: Settings
) -> None:
    arms = [
        {"name": "holdout", "share": 0.5},
        {"name": "clicks", "share": 0.5, "settings": {"click_weight": 1.0}},
    ]
    put = client.put(
        "/v1/admin/experiment",
        json={"arms": arms},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert put.status_code == 200, put.text
    explore: dict[str, str | int] = {"limit": LIMIT, "explore": "true"}
    before = client.get(f"/v1/articles/{SOURCE}/related", params=explore)
    plain = related(client)[1]
    last = [item["slug"] for item in before.json()["items"]][-1]
    readers_love(settings.data_dir, last, LIMIT)
    counter(client).refresh()
    after = client.get(f"/v1/articles/{SOURCE}/related", params=explore)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert related(client)[1] == plain  # the service's own list weighs no clicks


def test_a_refresh_adds_accepted_beacons_and_never_forged_ones(client: TestClient) -> None:
    box = box_events(client, SOURCE, limit=3)
    clicked = box_events(client, SOURCE, "click", [2], limit=3, impression=box[0]["impression"])
    forged = [
        {**event, "impression": "forged-impression-01", "token": "v.default.1.AAAA"}
        for event in box_events(client, SOURCE, "click", [3], limit=3)
    ]
    response = client.post(
        "/v1/events", content=json.dumps({"events": [*box, *clicked, *forged]}), headers=BEACON
    )
    assert response.json()["accepted"] == 4
    writer = client.app.state.services.event_log  # type: ignore[attr-defined]
    wait_for(lambda: writer.pending() == 0, "the impression log's writer to catch up")
    statistics = counter(client).refresh()
    assert statistics.events == 4
    assert "recommender_click_events 4.0" in client.get("/metrics").text
    shown = statistics.explained(SOURCE, box[1]["target"])
    assert shown is not None and shown.impressions == pytest.approx(1.0, rel=1e-3)
    assert shown.click_rate == pytest.approx(1.0)
    forged_target = statistics.explained(SOURCE, box[2]["target"])
    assert forged_target is not None and forged_target.click_rate == 0.0


def test_the_editors_page_says_how_often_readers_clicked(
    client: TestClient, settings: Settings
) -> None:
    last = related(client)[0][-1]
    readers_love(settings.data_dir, last, LIMIT)
    counter(client).refresh()
    log_in(client)
    page = client.get(f"/editor/articles/{SOURCE}", params={"limit": LIMIT}).text
    line = "readers of this article clicked it 50.0% of the time, 2.0\N{MULTIPLICATION SIGN} the"
    assert f"{line} slot average" in page


def test_workers_start_from_the_nightly_recount(settings: Settings) -> None:
    readers_love(settings.data_dir, "volcano-2", 3)
    path, tally = recount_to_file(settings, time.time())
    assert path == settings.data_dir / FILE and tally.events == 400 * 2 + 40 + 100
    served: list[ClickStatistics] = []
    counts = ClickCounts(
        FileEventLog(settings.data_dir / "elsewhere"),  # an empty log: the file alone counts
        served.append,
        settings.clicks,
        settings.data_dir,
        settings.event_log.retention_days,
    )
    counts.refresh()
    assert served[-1].score(SOURCE, "volcano-2") > 0.5


def test_the_first_request_of_a_new_worker_already_ranks_with_the_nightly_counts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker counts before it takes requests: a list served without clicks would stay cached
    so (and a CDN would keep it) until the next count changed the cache key. The count is made
    slow (a large log) so that a request could otherwise overtake it."""
    count = ClickCounts.refresh

    def slow_count(self: ClickCounts) -> ClickStatistics:
        time.sleep(0.5)
        return count(self)

    monkeypatch.setattr(ClickCounts, "refresh", slow_count)
    weighing = settings.replaced(click_weight=1.0)
    with TestClient(create_app(weighing)) as fresh:
        before, _, _ = related(fresh)
    last = before[-1]
    readers_love(settings.data_dir, last, LIMIT)
    recount_to_file(weighing, time.time())
    with TestClient(create_app(weighing)) as fresh:
        after, _, _ = related(fresh)  # no waiting for the background refresh
    assert after.index(last) < before.index(last)


def test_a_worker_whose_lists_do_not_weigh_clicks_starts_without_waiting_for_them(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Counting a large log adds to a worker's start only where the counts rank lists (the
    service's weight, or an arm of the running experiment); at weight 0 it runs behind."""
    counting = threading.Event()
    count = ClickCounts.refresh

    def held_count(self: ClickCounts) -> ClickStatistics:
        counting.wait(30)  # a count that takes as long as the test lets it
        return count(self)

    monkeypatch.setattr(ClickCounts, "refresh", held_count)
    try:
        with TestClient(create_app(settings)) as fresh:
            assert fresh.get("/readyz").status_code == 200
            assert not counting.is_set()  # started while the count was still held...
            assert "not ready after" not in caplog.text  # ...without waiting it out
            counting.set()
        arms = [{"name": "holdout", "share": 0.5},
                {"name": "clicks", "share": 0.5, "settings": {"click_weight": 1.0}}]  # fmt: skip
        counting.clear()
        with TestClient(create_app(settings)) as fresh:
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            put = fresh.put("/v1/admin/experiment", json={"arms": arms}, headers=admin)
            assert put.status_code == 200, put.text
            counting.set()
        counting.clear()
        started = threading.Timer(0.5, counting.set)
        started.start()
        with TestClient(create_app(settings)) as fresh:
            assert counting.is_set()  # an arm weighs clicks: the start waited for the count
    finally:
        counting.set()


def test_requests_read_while_refreshes_swap_the_counts(
    weighted: TestClient, settings: Settings
) -> None:
    failures: list[BaseException] = []
    done = threading.Event()

    def refresh() -> None:
        try:
            while not done.is_set():
                readers_love(settings.data_dir, "volcano-2", 3)  # new boxes each time
                counter(weighted).refresh()
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    refreshers = [threading.Thread(target=refresh) for _ in range(2)]
    for refresher in refreshers:
        refresher.start()
    try:
        for _ in range(30):
            assert weighted.get(f"/v1/articles/{SOURCE}/related").status_code == 200
            recommender = holder(weighted).require()
            recommender.related(SOURCE, RelatedQuery(limit=LIMIT))
    finally:
        done.set()
        for refresher in refreshers:
            refresher.join()
    assert not failures
    # Every event logged was counted once, whichever refresh read it.
    logged = sum(1 for _ in FileEventLog(settings.data_dir).read_since(0.0))
    assert counter(weighted).refresh().events == logged
