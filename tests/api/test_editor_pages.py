"""The editors' pages over HTTP: login, session cookie, CSRF, search, article page, forms."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.event_log.file_event_log import FileEventLog
from api.event_log.logged_events import LoggedEvent
from api.routes.editor import AUDIT_PAGE, _ago
from api.serving.experiment_figures import difference, wilson
from index.state.state_stores import open_stores
from recommender.settings import Settings
from tests.support.helpers import box_events, build_fake_index

PASSWORD = "correct horse"
TOKEN = "admin-token"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    built, _ = build_fake_index(
        tmp_path / "data", admin_token=TOKEN, editor_password=PASSWORD, redis_url=None
    )
    return built


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, name: str = "Ana", password: str = PASSWORD) -> str:
    page = client.get("/editor/login")
    response = client.post(
        "/editor/login",
        data={"name": name, "password": password, "csrf": csrf_of(page.text), "next": "/editor"},
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/editor").text)


def test_pages_send_strangers_to_the_login_page(client: TestClient) -> None:
    for path in ("/editor", "/editor/articles/volcano-0", "/editor/draft"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/editor/login?next=")


def test_the_session_cookie_is_httponly_and_samesite(client: TestClient) -> None:
    page = client.get("/editor/login")
    response = client.post(
        "/editor/login",
        data={"name": "Ana", "password": PASSWORD, "csrf": csrf_of(page.text)},
    )
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("editor_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/editor" in cookie


def test_a_wrong_password_is_refused(client: TestClient) -> None:
    page = client.get("/editor/login")
    response = client.post(
        "/editor/login", data={"name": "Ana", "password": "guess", "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 401 and "Wrong password" in response.text
    assert client.get("/editor").status_code == 303


def test_a_login_without_its_csrf_cookie_is_refused(settings: Settings) -> None:
    with TestClient(create_app(settings), follow_redirects=False) as fresh:
        response = fresh.post(
            "/editor/login", data={"name": "Ana", "password": PASSWORD, "csrf": "x"}
        )
        assert response.status_code == 403 and response.json()["error"] == "csrf_rejected"


def test_a_forged_cookie_is_not_a_session(client: TestClient) -> None:
    log_in(client)
    value = client.cookies["editor_session"]
    assert client.get("/editor").status_code == 200
    client.cookies.clear()
    client.cookies.set("editor_session", value[:-4] + "0000")
    assert client.get("/editor").status_code == 303


def test_forms_without_the_csrf_token_change_nothing(client: TestClient) -> None:
    log_in(client)
    response = client.post(
        "/editor/articles/volcano-0/blocks", data={"target": "volcano-1", "csrf": "forged"}
    )
    assert response.status_code == 403 and response.json()["error"] == "csrf_rejected"
    response = client.post("/editor/articles/volcano-0/blocks", data={"target": "volcano-1"})
    assert response.status_code == 403
    assert "No changes yet" in client.get("/editor/articles/volcano-0").text


def test_search_finds_by_title_words_and_slug_prefix_newest_first(client: TestClient) -> None:
    log_in(client)
    by_words = client.get("/editor", params={"q": "volc stor"}).text
    found = re.findall(r'href="/editor/articles/([a-z0-9-]+)"', by_words)
    assert found == ["volcano-2", "volcano-1", "volcano-0"]
    by_slug = re.findall(
        r'href="/editor/articles/([a-z0-9-]+)"',
        client.get("/editor", params={"q": "bitcoin-1"}).text,
    )
    assert by_slug == ["bitcoin-1"]


def test_the_article_page_shows_what_readers_get_and_why(client: TestClient) -> None:
    log_in(client)
    page = client.get("/editor/articles/volcano-0", params={"limit": 3}).text
    shown = re.findall(r'<tr data-slug="([a-z0-9-]+)">\s*<td>\d', page)
    api = client.get("/v1/articles/volcano-0/related", params={"limit": 3}).json()
    assert shown == [item["slug"] for item in api["items"]]
    assert api["index_version"] in page
    assert "semantic" in page and "lava" in page  # the strongest shared terms


def test_a_form_change_is_audited_under_the_editors_name_and_undone(client: TestClient) -> None:
    csrf = log_in(client, name="Ana Editor")
    form = {"target": "bitcoin-1", "slot": "1", "reason": "follow-up", "csrf": csrf}
    # bitcoin-1 hardly relates to volcano-0: the desk asks first, and pins nothing yet.
    asked = client.post("/editor/articles/volcano-0/pins", data=form)
    assert asked.status_code == 200 and "Pin it anyway" in asked.text
    assert 'name="confirmed" value="true"' in asked.text and "Bitcoin story number 1" in asked.text
    assert client.get("/v1/articles/volcano-0/related").json()["items"][0]["slug"] != "bitcoin-1"
    response = client.post("/editor/articles/volcano-0/pins", data={**form, "confirmed": "true"})
    assert response.status_code == 303 and "notice=" in response.headers["location"]
    api = client.get("/v1/articles/volcano-0/related").json()
    assert api["items"][0]["slug"] == "bitcoin-1"
    trail = client.get("/v1/audit", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert [(r["actor"], r["action"], r["reason"]) for r in trail] == [
        ("Ana Editor", "pin", "follow-up")
    ]
    client.post(f"/editor/articles/volcano-0/undo/{trail[0]['id']}", data={"csrf": csrf})
    assert client.get("/v1/articles/volcano-0/related").json()["items"][0]["slug"] != "bitcoin-1"


def test_a_refused_form_comes_back_with_the_reason(client: TestClient) -> None:
    csrf = log_in(client)
    response = client.post(
        "/editor/articles/volcano-0/pins",
        data={"target": "no-such-article", "slot": "1", "csrf": csrf},
    )
    assert response.status_code == 303 and "error=" in response.headers["location"]
    page = client.get(response.headers["location"]).text
    assert "no article with slug" in page


def test_logging_out_ends_the_session_on_the_server(client: TestClient) -> None:
    """The cookie copied before logging out is refused afterwards: the session ended in the
    store, not only in the browser that dropped it."""
    csrf = log_in(client)
    copied = client.cookies["editor_session"]
    assert client.post("/editor/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/editor").status_code == 303
    client.cookies.set("editor_session", copied)
    replayed = client.get("/editor")
    assert replayed.status_code == 303 and replayed.headers["location"].startswith("/editor/login")


def test_rotating_the_session_secret_ends_every_session(settings: Settings) -> None:
    """A new RECOMMENDER_SESSION_SECRET (a leaked key, say) makes every cookie signed with the
    old one worthless; a new login works."""
    before = settings.replaced(session_secret=SecretStr("the first secret key"))
    with TestClient(create_app(before), follow_redirects=False) as old:
        log_in(old)
        cookie = old.cookies["editor_session"]
        assert old.get("/editor").status_code == 200
    after = settings.replaced(session_secret=SecretStr("the rotated secret key"))
    with TestClient(create_app(after), follow_redirects=False) as new:
        new.cookies.set("editor_session", cookie)
        assert new.get("/editor").headers["location"].startswith("/editor/login")
        new.cookies.clear()
        log_in(new)
        assert new.get("/editor").status_code == 200


def test_changing_the_password_ends_every_session(settings: Settings) -> None:
    secret = {"session_secret": SecretStr("a session secret kept across the change")}
    before = settings.replaced(**secret)
    with TestClient(create_app(before), follow_redirects=False) as old:
        log_in(old)
        cookie = old.cookies["editor_session"]
        assert old.get("/editor").status_code == 200
    after = settings.replaced(**{**secret, "editor_password": SecretStr("a new password")})
    with TestClient(create_app(after), follow_redirects=False) as new:
        new.cookies.set("editor_session", cookie)
        assert new.get("/editor").headers["location"].startswith("/editor/login")


def test_login_never_redirects_off_the_editor_pages(client: TestClient) -> None:
    page = client.get("/editor/login", params={"next": "https://evil.example/"})
    assert 'name="next" value="/editor"' in page.text


def test_the_article_page_shows_what_readers_clicked(client: TestClient) -> None:
    log_in(client)
    shown = box_events(client, "volcano-0", limit=2)
    assert [event["target"] for event in shown] == ["volcano-1", "volcano-2"]
    impression = shown[0]["impression"]
    click = box_events(client, "volcano-0", "click", [2], limit=2, impression=impression)
    assert client.post("/v1/events", json={"events": [*shown, *click]}).json()["accepted"] == 3
    page = client.get("/editor/articles/volcano-0").text
    assert "Impressions 2 · clicks 1 · CTR 50.0 %" in page
    volcano_2 = '<a href="/editor/articles/volcano-2">Volcano story number 2</a>'
    row = f'<th scope="row">{volcano_2} <code class="slug">volcano-2</code></th>'
    assert f"{row}<td>1</td><td>1</td><td>100.0 %" in page


def test_people_read_titles_beside_slugs_and_dates_with_their_age(client: TestClient) -> None:
    csrf = log_in(client)
    form = {"target": "volcano-2", "slot": "1", "csrf": csrf}
    assert client.post("/editor/articles/volcano-0/pins", data=form).status_code == 303
    form = {"target": "volcano-1", "csrf": csrf}
    assert client.post("/editor/articles/volcano-0/blocks", data=form).status_code == 303
    page = client.get("/editor/articles/volcano-0").text
    for table, slug in (("pins", "volcano-2"), ("blocks", "volcano-1"), ("audit", "volcano-1")):
        section = page[page.index(f'<table id="{table}">') :]
        section = section[: section.index("</table>")]
        title = f"Volcano story number {slug[-1]}"
        assert f'>{title}</a> <code class="slug">{slug}</code>' in section, table
    # volcano-0 was published on 10 Mar 2024: a date, then its age in the largest unit.
    assert re.search(r"10 Mar 2024 · \d+ (years?|months?) ago", page)
    assert "days ago" not in page


def test_editor_pages_answer_errors_with_a_page(client: TestClient) -> None:
    log_in(client)
    invalid = client.get("/editor/articles/volcano-0", params={"limit": "abc"})
    assert invalid.status_code == 422 and invalid.headers["content-type"].startswith("text/html")
    assert "limit: Input should be a valid integer" in invalid.text
    unknown = client.get("/editor/articles/no-such-story")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
    assert "No served article has the slug &#39;no-such-story&#39;" in unknown.text
    # The API keeps its JSON errors.
    api = client.get("/v1/articles/no-such-story/related")
    assert api.status_code == 404 and api.json()["error"] == "article_not_found"


def test_the_pin_form_finds_articles_by_title(client: TestClient) -> None:
    log_in(client)
    found = client.get("/editor/titles", params={"q": "bitcoin stor"}).json()
    assert [item["slug"] for item in found] == ["bitcoin-2", "bitcoin-1", "bitcoin-0"]
    assert found[0]["title"] == "Bitcoin story number 2" and " ago" in found[0]["date"]
    assert client.get("/editor/titles", params={"q": "no such words"}).json() == []


def test_a_related_article_is_pinned_without_asking(client: TestClient) -> None:
    csrf = log_in(client)
    form = {"target": "volcano-2", "slot": "2", "csrf": csrf}
    response = client.post("/editor/articles/volcano-0/pins", data=form)
    assert response.status_code == 303 and "notice=" in response.headers["location"]


def test_the_status_page_shows_what_is_served_and_the_busiest_boxes(
    client: TestClient, settings: Settings
) -> None:
    log_in(client)
    events = [
        event
        for source in ("volcano-0", "volcano-0", "volcano-1")
        for event in box_events(client, source, limit=1)
    ]
    events += box_events(client, "volcano-0", "click", limit=1, impression=events[0]["impression"])
    assert client.post("/v1/events", json={"events": events}).json()["accepted"] == 4
    page = client.get("/editor/status").text
    version = client.get("/v1/articles/volcano-0").json()["index_version"]
    assert version in page and '<dd data-testid="articles">18</dd>' in page
    assert "18 articles from 1 source(s)" in page
    busiest = re.findall(r'<tr data-slug="([a-z0-9-]+)">', page)
    assert busiest == ["volcano-0", "volcano-1"]
    assert "Volcano story number 0</a>" in page and "<td>2</td><td>1</td><td>50.0 %" in page


def test_the_status_page_says_counters_in_memory_do_not_survive_a_restart(
    client: TestClient,
) -> None:
    log_in(client)
    page = client.get("/editor/status").text
    found = re.search(r'<dd data-testid="counters">([^<]*)</dd>', page)
    assert found, "the status page does not say where the click counters are kept"
    assert "memory only" in found.group(1) and "a restart loses them" in found.group(1)


def test_the_draft_page_says_whether_the_model_is_ready(client: TestClient) -> None:
    log_in(client)
    # The model loads in the background from the start; the page tells which state it is in.
    states = set()
    while "ready" not in states:
        page = client.get("/editor/draft").text
        found = re.search(r'id="draft-model" data-state="([a-z ]+)"', page)
        assert found, "the draft page does not show the model's state"
        states.add(found.group(1))
        assert states <= {"loading", "ready"}
    assert '<textarea name="summary"' in page


def audit_rows(page: str) -> list[str]:
    table = page[page.index('<table id="audit">') :]
    return re.findall(r'<tr data-audit="(\d+)">', table[: table.index("</table>")])


def test_a_block_everywhere_is_among_the_changes_of_every_list(client: TestClient) -> None:
    csrf = log_in(client)
    form = {"target": "volcano-1", "everywhere": "true", "csrf": csrf}
    assert client.post("/editor/articles/volcano-0/blocks", data=form).status_code == 303
    for slug in ("volcano-0", "volcano-1", "bitcoin-0"):
        page = client.get(f"/editor/articles/{slug}").text
        assert len(audit_rows(page)) == 1, slug
        assert "block (everywhere)" in page, slug


def test_notices_name_articles_by_title_and_say_what_happened(client: TestClient) -> None:
    csrf = log_in(client)

    def notice(path: str, **form: str) -> str:
        response = client.post(f"/editor/articles/volcano-0/{path}", data={**form, "csrf": csrf})
        assert response.status_code == 303, response.text
        page = client.get(response.headers["location"]).text
        found = re.search(r'<p class="notice" role="status">([^<]*)</p>', page)
        assert found, page
        return found.group(1)

    assert notice("pins", target="volcano-2", slot="2") == (
        "Pinned “Volcano story number 2” to slot 2."
    )
    assert notice("unpin", target="volcano-2") == "Unpinned “Volcano story number 2”."
    assert notice("blocks", target="volcano-1", everywhere="true") == (
        "Blocked “Volcano story number 1” everywhere."
    )
    trail = client.get("/v1/audit", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert notice(f"undo/{trail[0]['id']}") == (
        "Undone: “Volcano story number 1” is no longer blocked everywhere."
    )
    assert notice(f"undo/{trail[1]['id']}") == "Undone: “Volcano story number 2” is pinned again."


def test_the_audit_page_filters_by_action_article_and_editor_and_pages(
    client: TestClient,
) -> None:
    csrf = log_in(client, name="Ana")
    for n in range(1, 7):
        form = {"target": f"volcano-{n % 3}", "csrf": csrf}
        for change in ("blocks", "unblock"):
            response = client.post(f"/editor/articles/bitcoin-{n % 2}/{change}", data=form)
            assert "notice=" in response.headers["location"]
    client.cookies.clear()
    csrf = log_in(client, name="Ben")
    form = {"target": "bitcoin-1", "slot": "1", "csrf": csrf, "confirmed": "true"}
    assert client.post("/editor/articles/wildfire-0/pins", data=form).status_code == 303
    everything = client.get("/editor/audit")
    assert everything.status_code == 200
    assert '<a href="/editor/audit">Changes</a>' in everything.text  # in the desk's navigation
    assert len(audit_rows(everything.text)) == 13
    assert "Bitcoin story number 1</a>" in everything.text  # titles, not slugs alone
    by_ben = client.get("/editor/audit", params={"actor": "Ben"}).text
    assert len(audit_rows(by_ben)) == 1 and "Wildfire story number 0</a>" in by_ben
    blocks_of_one = client.get("/editor/audit", params={"action": "block", "article": "volcano-2"})
    assert len(audit_rows(blocks_of_one.text)) == 2
    unknown = client.get("/editor/audit", params={"action": "delete"})
    assert unknown.status_code == 422 and "action" in unknown.text


def test_the_audit_page_pages_back_through_older_changes(
    client: TestClient, settings: Settings
) -> None:
    log_in(client)
    stores = open_stores(settings.index)
    try:
        for _ in range(AUDIT_PAGE // 2 + 5):
            stores.curation.block("volcano-0", "volcano-1", None, "Ana")
            stores.curation.unblock("volcano-0", "volcano-1", "Ana")
    finally:
        stores.close()
    seen: list[str] = []
    path: str | None = "/editor/audit"
    while path:
        page = client.get(path).text
        assert not set(audit_rows(page)) & set(seen)
        seen += audit_rows(page)
        older = re.search(r'<a href="([^"]+)" rel="next">Older</a>', page)
        path = older.group(1).replace("&amp;", "&") if older else None
    assert [int(i) for i in seen] == list(range(AUDIT_PAGE + 10, 0, -1))


def test_a_version_built_minutes_ago_is_not_an_hour_old(client: TestClient) -> None:
    log_in(client)
    page = client.get("/editor/status").text
    built = re.search(r"<dt>Built</dt><dd>([^<]*)</dd>", page)
    assert built and re.search(r"· (just now|\d+ min ago)$", built.group(1)), built


def test_ages_under_an_hour_count_minutes() -> None:
    now = 1_700_000_000.0
    assert _ago(now - 20, now).endswith("· just now")
    assert _ago(now - 180, now).endswith("· 3 min ago")
    assert _ago(now - 59 * 60, now).endswith("· 59 min ago")
    assert _ago(now - 150 * 60, now).endswith("· 2 h ago")


def test_scores_are_explained_on_hover(client: TestClient) -> None:
    log_in(client)
    page = client.get("/editor/articles/volcano-0").text
    score = re.search(r'<td class="score" title="([^"]+)">\d\.\d{3}</td>', page)
    assert score and "semantic" in score.group(1)
    assert re.search(r'<span title="Semantic similarity[^"]*">semantic \d', page)


def test_the_status_page_sets_and_stops_the_experiment(client: TestClient) -> None:
    csrf = log_in(client)
    page = client.get("/editor/status").text
    assert "No experiment runs" in page and 'name="version" value="0"' in page
    arms = '[{"name": "holdout", "share": 0.6}, {"name": "wide", "share": 0.4, "settings": {"diversity": 0.4}}]'  # noqa: E501
    refused = client.post("/editor/experiment", data={"arms": arms, "version": "0"})
    assert refused.status_code == 403  # no CSRF token: nothing changes
    done = client.post("/editor/experiment", data={"arms": arms, "version": "0", "csrf": csrf})
    assert (
        done.status_code == 303
        and done.headers["location"] == "/editor/status?notice=Experiment+set."
    )
    page = client.get("/editor/status").text
    assert "Version 1, set by Ana" in page and "<code>wide</code> 40 %" in page
    assert "diversity=0.4" in page and 'name="version" value="1"' in page
    assert "No box of this experiment in the impression log yet" in page
    stale = client.post("/editor/experiment", data={"arms": arms, "version": "0", "csrf": csrf})
    assert "version+1%2C+not+0" in stale.headers["location"]
    bad = '[{"name": "holdout", "share": 0.6}, {"name": "wide", "share": 0.6}]'
    invalid = client.post("/editor/experiment", data={"arms": bad, "version": "1", "csrf": csrf})
    shown = client.get(invalid.headers["location"]).text
    assert "the shares must sum to 1" in shown and "Version 1," in shown
    stop = {"arms": "", "version": "1", "stop": "true", "csrf": csrf}
    assert client.post("/editor/experiment", data=stop).status_code == 303
    assert "No experiment runs" in client.get("/editor/status").text


def test_the_status_page_shows_each_arms_figures_and_a_sample_ratio_mismatch(
    client: TestClient, settings: Settings
) -> None:
    csrf = log_in(client)
    arms = '[{"name": "holdout", "share": 0.5}, {"name": "wide", "share": 0.5}]'
    client.post("/editor/experiment", data={"arms": arms, "version": "0", "csrf": csrf})
    now = time.time() + 1
    log = FileEventLog(settings.data_dir)
    for arm, placement, boxes, clicked in (
        ("holdout", "default", 400, 20),
        ("wide", "default", 400, 40),
        ("holdout", "sidebar", 300, 3),
        ("wide", "sidebar", 180, 9),
    ):
        for box in range(boxes):
            impression = f"{arm}-{placement}-{box:05d}-box"
            base = LoggedEvent(
                "impression", now, "volcano-0", impression, 1, "volcano-1", placement, arm, "v", 1.0
            )  # fmt: skip
            log.write(
                [base] + ([replace(base, type="click", propensity=None)] if box < clicked else [])
            )
    log.close()
    page = client.get("/editor/status").text
    row = re.search(r'<tr data-arm="wide" data-placement="default">(.*?)</tr>', page)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1))
    ctr, lift = wilson(40, 400), difference((40, 400), (20, 400))
    assert cells == [
        "default", "400", "40",
        f"{ctr.value:.2%} [{ctr.low:.2%}, {ctr.high:.2%}]".replace("%", " %"),
        f"{lift.value:.2%} [{lift.low:.2%}, {lift.high:.2%}]".replace("%", " %"),
    ]  # fmt: skip
    warnings = re.findall(r'data-testid="srm">Sample ratio mismatch in (\w+)', page)
    assert warnings == ["sidebar", "all"]
    # The next view adds what the log gained since (each event read once).
    log = FileEventLog(settings.data_dir)
    for box in range(100):
        base = LoggedEvent(
            "impression", time.time() + 1, "volcano-0", f"later-{box:05d}-box", 1, "volcano-1",
            "default", "wide", "v", 1.0,
        )  # fmt: skip
        log.write([base] + ([replace(base, type="click", propensity=None)] if box < 10 else []))
    log.close()
    again = client.get("/editor/status").text
    row = re.search(r'<tr data-arm="wide" data-placement="default">(.*?)</tr>', again)
    assert row is not None
    assert re.findall(r"<td>(.*?)</td>", row.group(1))[1:3] == ["500", "50"]
