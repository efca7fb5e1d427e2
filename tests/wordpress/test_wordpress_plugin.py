"""The WordPress plugin (integrations/wordpress/) on a real WordPress, against a real
`recommender serve`, seen through Debian's Chromium.

The settings page, the post pages and one post in the block editor are driven in the browser;
the other posts are written through WordPress's REST API as the admin user (the block editor's
own save path, without its heavy UI), so each save runs the plugin's hooks as an editor's would.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from recommender.ingest.feeds import FeedReport, read_feed
from tests.support.hanging_server import HangingServer
from tests.support.helpers import ADMIN_TOKEN, wait_for
from tests.support.processes import ServeProcess
from tests.wordpress.wordpress_site import ADMIN_PASSWORD, ADMIN_USER, AdminClient, WordPressSite

# Held to the 2 s (a post suggested) and the plugin's 3 s (a save against a hung service):
# run in make test's serial phase, with nothing beside it.
pytestmark = pytest.mark.timing

VOLCANO = (
    "Volcano eruption near Grindavik: lava, ash and magma from the crater; Iceland's flights "
    "grounded as the volcano eruption goes on and the ash cloud spreads."
)


def article(service: ServeProcess, slug: str) -> httpx.Response:
    return httpx.get(f"{service.url}/v1/articles/{slug}", timeout=5)


def box(page: Page, slug: str) -> Any:
    return page.locator(f'[data-related-slug="{slug}"]')


@pytest.fixture(scope="module")
def settings_page(
    browser: Browser, wordpress: WordPressSite, service: ServeProcess, admin: AdminClient
) -> Iterator[Page]:
    """Logged in as the admin in Chromium: the plugin activated on the Plugins page and set up
    on Settings → Related articles (URL, token, cards of 4, after the content)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    page.goto(f"{wordpress.url}/wp-login.php")
    page.fill("#user_login", ADMIN_USER)
    page.fill("#user_pass", ADMIN_PASSWORD)
    page.click("#wp-submit")
    page.wait_for_url("**/wp-admin/**")
    page.goto(f"{wordpress.url}/wp-admin/plugins.php")
    page.click("#activate-related-articles")
    expect(page.locator("#deactivate-related-articles")).to_be_visible()
    # Saved while the plugin has no service yet: nothing is sent or queued (the backfill sends it).
    admin.publish(title="Published before the set-up", content=f"<p>{VOLCANO}</p>")
    page.goto(f"{wordpress.url}/wp-admin/options-general.php?page=related-articles")
    page.fill("#related-url", service.url)
    page.fill("#related-token", ADMIN_TOKEN)
    page.select_option("#related-layout", "cards")
    page.fill("#related-count", "4")
    page.fill("#related-heading", "More from The Daily Example")
    page.check("input[value=after_content]")
    page.click("#submit")
    expect(page.locator("#setting-error-settings_updated")).to_be_visible()
    try:
        yield page
    finally:
        context.close()


def visit(browser: Browser, url: str, *, javascript: bool = True) -> Page:
    """A post page in a fresh profile (no cached answers from an earlier visit)."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=javascript
    )
    page = context.new_page()
    page.goto(url)
    return page


def test_the_settings_page_stores_the_token_without_showing_it_and_tests_the_connection(
    settings_page: Page, service: ServeProcess, artifacts: Path
) -> None:
    page = settings_page
    page.reload()
    assert ADMIN_TOKEN not in page.content()
    expect(page.locator("#related-token")).to_have_value("")
    expect(page.locator("#related-token")).to_have_attribute(
        "placeholder", "••••••••" + ADMIN_TOKEN[-4:]
    )
    expect(page.locator("#related-url")).to_have_value(service.url)
    page.click("#related-articles-test-button")
    report = page.locator("#related-articles-test")
    expect(report).to_contain_text("The service is ready, serving index version")
    expect(report).to_contain_text("It holds 18 articles, embedded with")
    expect(report).to_contain_text("The admin token is accepted")
    expect(page.locator("#related-articles-queue-empty")).to_be_visible()
    page.screenshot(path=str(artifacts / "wordpress-settings.png"), full_page=True)


@pytest.fixture(scope="module")
def neighbour(settings_page: Page, admin: AdminClient) -> dict[str, Any]:
    """A published post whose page should suggest the posts about the same eruption."""
    post: dict[str, Any] = admin.publish(
        title="Flights grounded over Iceland", content=f"<p>{VOLCANO}</p>"
    )
    return post


def test_a_published_post_is_suggested_within_2_s_follows_its_edits_and_leaves_when_trashed(
    browser: Browser, admin: AdminClient, service: ServeProcess, neighbour: dict[str, Any],
    artifacts: Path,
) -> None:  # fmt: skip
    category = admin.rest("POST", "categories", name="Volcanoes")
    tag = admin.rest("POST", "tags", name="Iceland")
    started = time.monotonic()
    post = admin.publish(
        title="Lava reaches Grindavik",
        content=f"<p>{VOLCANO} Lava reaches the town.</p>",
        excerpt="The eruption's lava reaches the town.",
        categories=[category["id"]],
        tags=[tag["id"]],
    )
    slug = post["slug"]
    page = visit(browser, neighbour["link"])
    suggestion = box(page, neighbour["slug"]).locator(f'[data-slug="{slug}"]')
    expect(suggestion).to_contain_text("Lava reaches Grindavik", timeout=2000)
    seen_after = time.monotonic() - started
    assert seen_after < 2.0, f"the new post was suggested {seen_after:.2f} s after it was saved"
    expect(box(page, neighbour["slug"])).to_have_attribute("data-layout", "cards")
    expect(box(page, neighbour["slug"]).locator("h2")).to_have_text("More from The Daily Example")
    page.screenshot(path=str(artifacts / "wordpress-post.png"))
    page.context.close()
    card = article(service, slug).json()
    assert card["url"] == post["link"]
    assert card["section"] == "Volcanoes"
    assert card["tags"] == ["Volcanoes", "Iceland"]
    assert card["author"] == ADMIN_USER
    assert (
        card["summary"] == "The eruption\u2019s lava reaches the town."
    )  # as WordPress renders it

    admin.rest("POST", f"posts/{post['id']}", title="Lava crosses the Grindavik walls")
    page = visit(browser, neighbour["link"])
    suggestion = box(page, neighbour["slug"]).locator(f'[data-slug="{slug}"]')
    expect(suggestion).to_contain_text("Lava crosses the Grindavik walls", timeout=2000)
    page.context.close()

    admin.rest("DELETE", f"posts/{post['id']}")  # to the trash
    assert article(service, slug).status_code == 404
    page = visit(browser, neighbour["link"])
    expect(box(page, neighbour["slug"])).to_have_attribute("data-related-state", "ready")
    expect(box(page, neighbour["slug"]).locator("[data-slug]")).not_to_have_count(0)
    expect(box(page, neighbour["slug"]).locator(f'[data-slug="{slug}"]')).to_have_count(0)
    page.context.close()


@pytest.mark.parametrize("change", ["private", "password", "draft"])
def test_a_post_that_stops_being_public_is_retracted(
    admin: AdminClient, service: ServeProcess, neighbour: dict[str, Any], change: str
) -> None:
    post = admin.publish(title=f"Ash cloud update ({change})", content=f"<p>{VOLCANO}</p>")
    assert article(service, post["slug"]).status_code == 200
    fields = {"password": "s3cret"} if change == "password" else {"status": change}
    admin.rest("POST", f"posts/{post['id']}", **fields)
    assert article(service, post["slug"]).status_code == 404


def test_a_post_whose_slug_changes_moves_to_its_new_slug(
    admin: AdminClient, service: ServeProcess, neighbour: dict[str, Any]
) -> None:
    post = admin.publish(title="Crater lake forms", content=f"<p>{VOLCANO}</p>")
    assert article(service, "crater-lake-forms").status_code == 200
    moved = admin.rest("POST", f"posts/{post['id']}", slug="crater-lake-after-the-eruption")
    assert article(service, "crater-lake-forms").status_code == 404
    assert article(service, "crater-lake-after-the-eruption").json()["url"] == moved["link"]


def test_sync_all_posts_pushes_the_archive_and_resumes_where_it_stopped(
    settings_page: Page, service: ServeProcess
) -> None:
    """WordPress's own "Hello world!" and a post saved before the plugin was set up: the
    backfill button sends them. The second batch's request is cut off in the browser; after a
    reload the button resumes."""
    assert article(service, "hello-world").status_code == 404
    assert article(service, "published-before-the-set-up").status_code == 404
    page = settings_page
    page.reload()
    batches: list[str] = []

    def cut_the_second(route: Route) -> None:
        if "related_articles_backfill" not in (route.request.post_data or ""):
            route.continue_()
            return
        batches.append("seen")
        if len(batches) == 2:
            route.abort()
        else:
            route.continue_()

    page.route("**/admin-ajax.php", cut_the_second)
    page.click("#related-articles-backfill")
    progress_text = page.locator("#related-articles-progress-text")
    expect(progress_text).to_contain_text("stopped")
    page.unroute("**/admin-ajax.php")
    assert article(service, "hello-world").status_code == 200  # the first batch went through
    page.reload()
    expect(page.locator("#related-articles-backfill")).to_contain_text("Resume sync (2 of ")
    page.click("#related-articles-backfill")
    expect(progress_text).to_contain_text("done")
    progress = page.locator("#related-articles-progress")
    assert progress.get_attribute("value") == progress.evaluate("bar => String(bar.max)")
    page.reload()
    expect(page.locator("#related-articles-backfill")).to_have_text("Sync all posts")
    assert article(service, "published-before-the-set-up").status_code == 200


def test_a_post_the_service_refuses_is_listed_as_failed_until_the_editor_fixes_it(
    admin: AdminClient, service: ServeProcess, settings_page: Page
) -> None:
    """A title over the service's 1,000 characters: refused (422), listed as failed with the
    service's reason at once (no retry would help), and synced by the edit that shortens it."""
    post = admin.publish(title="Eruption " * 120, content=f"<p>{VOLCANO}</p>")
    settings_page.reload()
    row = settings_page.locator(f'#related-articles-queue tr[data-slug="{post["slug"]}"]')
    expect(row).to_contain_text("failed")
    expect(row).to_contain_text("HTTP 422")
    expect(row).to_contain_text("title")
    admin.rest("POST", f"posts/{post['id']}", title="Eruption")
    assert article(service, post["slug"]).json()["title"] == "Eruption"
    settings_page.reload()
    expect(row).to_have_count(0)


def test_live_sync_and_the_nightly_wordpress_ingest_derive_the_same_articles(
    admin: AdminClient, wordpress: WordPressSite, service: ServeProcess, neighbour: dict[str, Any]
) -> None:
    """`recommender reindex --source wordpress+http://SITE` reads what the plugin sent: the same
    slugs (a WordPress slug with `_` included), the same fields, and neither has the posts that
    are not public (private, password-protected, drafts, trashed)."""
    admin.publish(
        title="Magma_Update: the crater", slug="Magma_Update", content=f"<p>{VOLCANO}</p>"
    )
    nightly = {a.slug: a for a in read_feed(f"wordpress+{wordpress.url}", FeedReport())}
    assert "magma-update" in nightly
    for slug, ingested in nightly.items():
        answer = article(service, slug)
        assert answer.status_code == 200, f"{slug}: read by the nightly run, never synced live"
        card = answer.json()
        expected = ingested.card()
        for field in ("title", "summary", "url", "section", "tags", "author", "published_at"):
            assert card[field] == expected[field], (slug, field)
    assert not [slug for slug in nightly if "ash-cloud" in slug or slug.startswith("lava-")]


def test_a_page_renders_without_the_box_while_the_service_is_down_and_syncs_once_it_is_back(
    browser: Browser, admin: AdminClient, wordpress: WordPressSite, service: ServeProcess,
    settings_page: Page,
) -> None:  # fmt: skip
    service.stop()
    try:
        started = time.monotonic()
        post = admin.publish(title="Eruption ends", content=f"<p>{VOLCANO} It has ended.</p>")
        assert time.monotonic() - started < 3, "saving waited on the service"
        page = visit(browser, post["link"])
        expect(page.locator("h1")).to_contain_text("Eruption ends")
        expect(box(page, post["slug"])).to_be_hidden(timeout=5000)
        page.context.close()
        settings_page.reload()
        queued = settings_page.locator(f'#related-articles-queue tr[data-slug="{post["slug"]}"]')
        expect(queued).to_contain_text("publish")
    finally:
        service.start()
    # WP-Cron retries on the next page views, as on any WordPress site.
    wait_for(
        lambda: (
            httpx.get(wordpress.url, timeout=10).status_code == 200
            and article(service, post["slug"]).status_code == 200
        ),
        "the queued sync reached the service once it was back",
        timeout=30,
    )
    settings_page.reload()
    expect(settings_page.locator("#related-articles-queue-empty")).to_be_visible()


class Unavailable(BaseHTTPRequestHandler):
    """The service while it is down behind its proxy: 503 after 0.1 s."""

    def do_any(self) -> None:
        time.sleep(0.1)
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_DELETE = do_any

    def log_message(self, *args: Any) -> None:
        pass


def test_concurrent_saves_and_wp_crons_retries_lose_no_queued_change(
    admin: AdminClient, wordpress: WordPressSite, service: ServeProcess, settings_page: Page
) -> None:
    """While the service is down, many posts are saved at the same moment (a thread each, as
    many editors would; PHP serves 4 requests at a time), while WP-Cron retries the changes
    queued a moment before: every post is listed as waiting, and once the service is back and
    WP-Cron runs, each one's latest state reaches it."""
    saving = threading.Event()

    def publish(title: str) -> dict[str, Any]:
        return admin.publish(title=title, content=f"<p>{VOLCANO}</p>")

    def edit(post: dict[str, Any], version: str) -> None:
        admin.rest("POST", f"posts/{post['id']}", title=f"{post['title']['raw']} ({version})")

    def cron() -> None:  # WP-Cron's retries, racing the saves
        while saving.is_set():
            httpx.get(f"{wordpress.url}/wp-cron.php", timeout=30)

    down = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=down.serve_forever, daemon=True).start()
    with ThreadPoolExecutor(20) as pool:
        queued = list(pool.map(publish, [f"Tremor report {n}" for n in range(10)]))
        fresh = list(pool.map(publish, [f"Ash report {n}" for n in range(8)]))
        posts = queued + fresh
        save_settings(settings_page, wordpress, url=f"http://127.0.0.1:{down.server_port}")
        try:
            list(pool.map(edit, queued, ["queued"] * len(queued)))
            time.sleep(1.1)  # their retries are due (RELATED_ARTICLES_RETRY_SECONDS is 1)
            saving.set()
            racing = pool.submit(cron)
            list(pool.map(edit, posts, ["final"] * len(posts)))
            saving.clear()
            racing.result()
            settings_page.reload()
            for post in posts:
                row = settings_page.locator(
                    f'#related-articles-queue tr[data-slug="{post["slug"]}"]'
                )
                expect(row).to_contain_text("publish")
                expect(row).to_contain_text("pending")
        finally:
            saving.clear()
            save_settings(settings_page, wordpress, url=service.url)  # the service is back
            down.shutdown()
            down.server_close()

    def arrived() -> bool:
        httpx.get(f"{wordpress.url}/wp-cron.php", timeout=30)
        return all(
            article(service, post["slug"]).json()["title"] == f"{post['title']['raw']} (final)"
            for post in posts
        )

    wait_for(arrived, "every post's latest state reached the service", timeout=30)
    settings_page.reload()
    expect(settings_page.locator("#related-articles-queue-empty")).to_be_visible()


def save_settings(page: Page, wordpress: WordPressSite, **fields: str) -> None:
    """Change settings on the settings page, as the admin would."""
    page.goto(f"{wordpress.url}/wp-admin/options-general.php?page=related-articles")
    for name, value in fields.items():
        if name == "placement":
            page.check(f"input[value={value}]")
        else:
            page.fill(f"#related-{name}", value)
    page.click("#submit")
    expect(page.locator("#setting-error-settings_updated")).to_be_visible()


def test_a_hung_service_holds_a_save_a_few_seconds_at_most(
    admin: AdminClient, wordpress: WordPressSite, service: ServeProcess, settings_page: Page
) -> None:
    """A service that accepts and never answers: the save returns after the 3 s timeout, the
    change waits in the queue, and reaches the service as soon as the URL points at it again,
    whatever backoff it earned against the hung one."""
    with HangingServer() as hanging:
        save_settings(settings_page, wordpress, url=f"http://127.0.0.1:{hanging.port}")
        try:
            started = time.monotonic()
            post = admin.publish(title="Ash falls on Vik", content=f"<p>{VOLCANO}</p>")
            took = time.monotonic() - started
            assert took < 6, f"saving took {took:.1f} s against a hung service"
            settings_page.reload()
            queued = settings_page.locator(
                f'#related-articles-queue tr[data-slug="{post["slug"]}"]'
            )
            expect(queued).to_contain_text("timed out")
            # As after a night against the hung service: its next try an hour away.
            wordpress.sql(
                "UPDATE wp_related_articles_queue SET attempts = 12, "
                f"next_at = UNIX_TIMESTAMP() + 3600 WHERE post_id = {int(post['id'])}"
            )
        finally:
            save_settings(settings_page, wordpress, url=service.url)
    wait_for(
        lambda: (
            httpx.get(wordpress.url, timeout=10).status_code == 200
            and article(service, post["slug"]).status_code == 200
        ),
        "the queued sync reached the service once the URL was right again",
        timeout=30,
    )


def test_the_block_and_the_shortcode_render_the_box_and_readers_without_javascript_get_the_fragment(
    browser: Browser, admin: AdminClient, neighbour: dict[str, Any]
) -> None:
    block = admin.publish(
        title="Volcano: the block",
        content=f"<!-- wp:paragraph --><p>{VOLCANO}</p><!-- /wp:paragraph -->"
        '<!-- wp:related-articles/box {"limit":3,"layout":"list","heading":"From the block"} /-->',
    )
    shortcode = admin.publish(
        title="Volcano: the shortcode",
        content=f"<p>{VOLCANO}</p>"
        '[related_articles limit="2" layout="list" heading="From the shortcode"]',
    )
    for post, limit, heading in (
        (block, 3, "From the block"),
        (shortcode, 2, "From the shortcode"),
    ):
        page = visit(browser, post["link"])
        made = page.locator(f'[data-related-slug="{post["slug"]}"][data-limit="{limit}"]')
        expect(made).to_have_attribute("data-layout", "list")
        expect(made).to_have_attribute("data-page-slug", post["slug"])
        expect(made.locator("h2")).to_have_text(heading)
        expect(made.locator("[data-slug]")).to_have_count(limit)
        page.context.close()

    page = visit(browser, neighbour["link"], javascript=False)
    fragment = page.locator("section.related-articles")
    expect(fragment.locator("h2")).to_have_text("More from The Daily Example")
    expect(fragment.locator("li")).not_to_have_count(0)
    assert neighbour["slug"] not in [
        item.get_attribute("data-slug") for item in fragment.locator("li").all()
    ]
    page.context.close()


def test_an_amp_page_gets_the_server_rendered_fragment_and_no_script(
    wordpress: WordPressSite, neighbour: dict[str, Any]
) -> None:
    """`amp_is_request()` as the AMP plugin defines it (tests/wordpress/amp-flag.php: true on
    `?amp=1`): the box is the service's fragment alone, with no widget loader, no script, no
    `<noscript>`; the same post without the flag gets the widget's snippet."""
    amp = httpx.get(neighbour["link"], params={"amp": "1"}, timeout=10)
    assert amp.status_code == 200
    main = amp.text[amp.text.index("<main") : amp.text.index("</main>")]  # the theme's own aside
    assert main.count('<section class="related-articles ') == 1
    fragment = main[main.index('<section class="related-articles ') :]
    fragment = fragment[: fragment.index("</section>")]
    assert "More from The Daily Example" in fragment
    assert 'data-slug="' in fragment and f'data-slug="{neighbour["slug"]}"' not in fragment
    for script in ("<script", "widget.js", "onload=", "data-related-slug", "<noscript"):
        assert script not in main, f"{script} on the AMP page"
    plain = httpx.get(neighbour["link"], timeout=10).text
    assert "widget.js" in plain and f'data-related-slug="{neighbour["slug"]}"' in plain
    assert '<noscript><section class="related-articles ' in plain


def test_a_post_published_in_the_block_editor_with_the_block_is_synced_and_shows_it(
    browser: Browser, settings_page: Page, wordpress: WordPressSite, service: ServeProcess
) -> None:
    """The editor's own Publish button: the block is offered, the save syncs the post, and its
    page shows the block's box."""
    page = settings_page
    page.goto(f"{wordpress.url}/wp-admin/post-new.php")
    page.wait_for_function(
        "() => window.wp && wp.blocks && wp.blocks.getBlockType('related-articles/box')"
        " && wp.data.select('core/editor').getCurrentPostId()",
        timeout=30_000,
    )
    assert page.evaluate("() => wp.blocks.getBlockType('related-articles/box').title") == (
        "Related articles"
    )
    page.evaluate(
        """volcano => {
            wp.data.dispatch('core/editor').editPost({title: 'Ash over Reykjavik'});
            wp.data.dispatch('core/block-editor').insertBlocks([
                wp.blocks.createBlock('core/paragraph', {content: volcano}),
                wp.blocks.createBlock('related-articles/box', {limit: 3, heading: 'Also'}),
            ]);
        }""",
        VOLCANO,
    )
    page.keyboard.press("Escape")  # the welcome guide, if it opened
    page.click(".editor-post-publish-panel__toggle")
    page.click(".editor-post-publish-button")
    expect(page.locator(".post-publish-panel__postpublish")).to_be_visible()
    link = page.evaluate("() => wp.data.select('core/editor').getPermalink()")
    slug = page.evaluate("() => wp.data.select('core/editor').getEditedPostAttribute('slug')")
    assert article(service, slug).json()["title"] == "Ash over Reykjavik"
    reader = visit(browser, link)
    made = reader.locator(f'[data-related-slug="{slug}"][data-limit="3"]')
    expect(made.locator("h2")).to_have_text("Also")
    expect(made.locator("[data-slug]")).to_have_count(3)
    reader.context.close()


def test_with_manual_placement_only_blocks_and_shortcodes_place_the_box(
    browser: Browser, admin: AdminClient, wordpress: WordPressSite, settings_page: Page,
    neighbour: dict[str, Any],
) -> None:  # fmt: skip
    block = admin.publish(
        title="Volcano: only the block",
        content=f"<!-- wp:paragraph --><p>{VOLCANO}</p><!-- /wp:paragraph -->"
        '<!-- wp:related-articles/box {"limit":2} /-->',
    )
    save_settings(settings_page, wordpress, placement="manual")
    try:
        page = visit(browser, block["link"])
        expect(page.locator("[data-related-slug] [data-slug]")).to_have_count(2)
        expect(page.locator("[data-related-slug]")).to_have_count(1)
        page.context.close()
        page = visit(browser, neighbour["link"])  # served whole: the box would be in its HTML
        expect(page.locator("h1")).to_contain_text(neighbour["title"]["rendered"])
        expect(page.locator("[data-related-slug]")).to_have_count(0)
        page.context.close()
    finally:
        save_settings(settings_page, wordpress, placement="after_content")


def test_a_placement_names_the_box_and_its_fragment(
    admin: AdminClient, wordpress: WordPressSite, settings_page: Page, neighbour: dict[str, Any]
) -> None:
    """The Placement setting names every box (`data-placement` for the widget, `placement=` on
    the fragment, whose box then carries it as signed); a shortcode's own name wins; empty or
    `default` names none, so those boxes stay the service's default placement."""

    def boxes(link: str) -> list[str]:
        tags = [
            tag[: tag.index(">")] for tag in httpx.get(link, timeout=10).text.split("<div ")[1:]
        ]
        return [tag for tag in tags if "data-related-slug" in tag]

    def fragments(link: str) -> list[str]:
        sections = httpx.get(link, timeout=10).text.split("<noscript><section ")[1:]
        return [section[: section.index(">")] for section in sections]

    shortcode = admin.publish(
        title="Volcano: the sidebar box",
        content=f'<p>{VOLCANO}</p>[related_articles limit="2" placement="Sidebar"]',
    )
    own, automatic = boxes(shortcode["link"])
    assert 'data-placement="sidebar"' in own and "data-placement" not in automatic
    own_fragment, automatic_fragment = fragments(shortcode["link"])
    assert 'data-feedback-placement="sidebar"' in own_fragment
    assert "placement" not in automatic_fragment
    save_settings(settings_page, wordpress, **{"placement-name": "article-end"})
    try:
        (box,) = boxes(neighbour["link"])
        assert 'data-placement="article-end"' in box
        (fragment,) = fragments(neighbour["link"])
        assert 'data-feedback-placement="article-end"' in fragment
        own, automatic = boxes(shortcode["link"])
        assert 'data-placement="sidebar"' in own and 'data-placement="article-end"' in automatic
    finally:
        save_settings(settings_page, wordpress, **{"placement-name": "default"})
    (box,) = boxes(neighbour["link"])
    assert "data-placement" not in box


def test_the_plugin_logged_no_php_warning(wordpress: WordPressSite) -> None:
    log = wordpress.root / "debug.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    ours = [
        line
        for line in text.splitlines()
        if "related-articles" in line or "amp_is_request" in line  # or asked too early
    ]
    assert not ours, "\n".join(ours[:10])


def test_a_stopped_site_leaves_no_php_worker_behind(
    tmp_path: Path, wordpress: WordPressSite
) -> None:
    """`php -S` forks its PHP_CLI_SERVER_WORKERS workers; stopping the server ends them too
    (they used to outlive it, holding the port, after every test run)."""
    site = WordPressSite(tmp_path / "site")
    try:
        site.start()
        group = site.pid
        os.killpg(group, 0)  # the group is alive while the site serves
    finally:
        site.close()
    wait_for(lambda: not group_alive(group), "php -S's workers to end")


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
