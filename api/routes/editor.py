"""The editors' desk: search, preview an article's suggestions exactly as readers get them,
pin and block with an audit trail, try a draft. Server-rendered pages behind a login.

Long (~500 lines): every page of the desk and its form handlers, which share the login, CSRF
and template context; the work itself is in `api.serving.override_actions`.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Form, Path, Query, Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)

from api.access import editor_session
from api.access.editor_session import COOKIE, LOGIN_COOKIE, EditorDep, EditorFormDep
from api.deps import ServicesDep
from api.routes.parameters import SlugPath
from api.serving.ctr_report import ctr_report
from api.serving.experiment_arms import Experiment
from api.serving.experiment_figures import ExperimentFigures, share_text
from api.serving.override_actions import add_block, add_pin, audit_json, block_json, pin_json
from api.templating import STATIC, render
from index.index_errors import StoreUnavailable
from index.serving.recommender_engine import Recommender
from index.state.disk_space import free_bytes, low_space_warning
from recommender.articles import FIELD_LIMITS, MAX_SLUG_LENGTH
from recommender.errors import ArticleNotFound, InvalidQuery, RecommenderError
from recommender.ingest.listings import Listing
from recommender.overrides import MAX_SLOT
from recommender.ranking import RelatedQuery
from recommender.settings import IndexSettings
from recommender.signals.registry import reasons

router = APIRouter(prefix="/editor", include_in_schema=False)

#: The only files /editor/static serves.
STATIC_FILES = {"editor.css": "text/css", "editor.js": "text/javascript"}
TargetForm = Annotated[str, Form(max_length=MAX_SLUG_LENGTH)]
ReasonForm = Annotated[str, Form(max_length=500)]


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, **context), status, headers={"Cache-Control": "no-store"})


def _back(slug: str, *, notice: str = "", error: str = "") -> RedirectResponse:
    """Post/redirect/get: back to the article page with what happened."""
    query = urlencode({k: v for k, v in (("notice", notice), ("error", error)) if v})
    return RedirectResponse(f"/editor/articles/{slug}" + (f"?{query}" if query else ""), 303)


#: (unit, days) from the largest: an age is told in the largest unit it holds once.
_AGE_UNITS = (("year", 365.25), ("month", 30.44), ("week", 7.0), ("day", 1.0))
#: What the experiment form offers while none runs: an example to edit.
EXAMPLE_ARMS = [
    {"name": "holdout", "share": 0.5},
    {"name": "diverse", "share": 0.5, "settings": {"diversity": 0.3}},
]
#: Below this semantic similarity to the list's article, pinning asks the editor to confirm.
LOW_PIN_SCORE = 0.3


def _ago(published: float, now: float) -> str:
    """A date as editors read it: "12 Mar 2021 · 5 years ago" ("date unknown" for NaN)."""
    if published != published:  # NaN: unknown date
        return "date unknown"
    moment = datetime.fromtimestamp(published, UTC)
    date = f"{moment.day} {moment:%b %Y}"
    days = (now - published) / 86_400
    if days < 0:
        return f"{date} · scheduled"
    if days < 1:
        minutes = int((now - published) // 60)
        if minutes < 1:
            return f"{date} · just now"
        return f"{date} · {minutes} min ago" if minutes < 60 else f"{date} · {minutes // 60} h ago"
    unit, size = next((unit, size) for unit, size in _AGE_UNITS if days >= size)
    count = int(days // size)
    return f"{date} · {count} {unit}{'' if count == 1 else 's'} ago"


def _titles(recommender: Recommender, slugs: Iterable[str | None]) -> dict[str, str]:
    """The titles of the served articles among `slugs` (others are shown by slug alone)."""
    titles = {}
    for slug in set(slugs) - {None}:
        assert slug is not None
        try:
            titles[slug] = recommender.card(recommender.row_of(slug))["title"]
        except ArticleNotFound:
            continue
    return titles


def _named(recommender: Recommender, slug: str) -> str:
    """An article as a notice names it: its title in quotes, or its slug if it is not served."""
    return f"“{title}”" if (title := _titles(recommender, [slug]).get(slug)) else slug


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response(status_code=404)
    return FileResponse(STATIC / name, media_type=media_type)


@router.get("/login")
async def login_page(request: Request, services: ServicesDep, next: str = "/editor") -> Response:
    editor_session.password(services.settings.editor)
    token = editor_session.csrf_token()
    response = _page("editor_login.html", next=_safe_next(next), csrf=token, error=None)
    editor_session.set_cookie(response, request, LOGIN_COOKIE, token, 600)
    return response


def _safe_next(target: str) -> str:
    """Only a path of the editor pages: never an open redirect."""
    return target if target.startswith("/editor") and "//" not in target else "/editor"


@router.post("/login")
async def login(
    request: Request,
    services: ServicesDep,
    name: Annotated[str, Form(min_length=1, max_length=60)],
    password: Annotated[str, Form(max_length=500)],
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/editor",
) -> Response:
    settings = services.settings.editor
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        raise editor_session.CsrfRejected
    if not editor_session.password_matches(settings, password):
        return _page(
            "editor_login.html", 401, next=_safe_next(next), csrf=csrf, error="Wrong password."
        )
    session, cookie = await services.holder.call_store(
        lambda: editor_session.issue(settings, services.sessions, name.strip())
    )
    response = RedirectResponse(_safe_next(next), 303)
    max_age = int(session.expires - services.sessions.clock())
    editor_session.set_cookie(response, request, COOKIE, cookie, max_age)
    response.delete_cookie(LOGIN_COOKIE, path=editor_session.PATH)
    return response


@router.post("/logout")
async def logout(editor: EditorDep, _: EditorFormDep, services: ServicesDep) -> Response:
    # On every worker and host, not only in this browser.
    await services.holder.call_store(lambda: services.sessions.revoke(editor.id))
    response = RedirectResponse("/editor/login", 303)
    response.delete_cookie(COOKIE, path=editor_session.PATH)
    return response


@router.get("")
async def search_page(
    editor: EditorDep,
    services: ServicesDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    recommender = services.holder.require()
    now = time.time()
    results = [
        {**recommender.card(row), "age": _ago(float(recommender.published[row]), now)}
        for row in recommender.search(q)
    ]
    return _page(
        "editor_search.html",
        editor=editor,
        q=q,
        results=results,
        index_version=recommender.version.id,
    )


@router.get("/articles/{slug}")
async def article_page(
    slug: SlugPath,
    editor: EditorDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
    section: Annotated[str, Query(max_length=100)] = "",
    # Room for notices naming articles by their titles (up to 1000 characters).
    notice: Annotated[str, Query(max_length=2500)] = "",
    error: Annotated[str, Query(max_length=2500)] = "",
) -> Response:
    """The article's suggestions exactly as readers get them (same code, version, overrides)."""
    recommender = services.holder.require()
    row = recommender.row_of(slug)
    query = RelatedQuery(limit=limit, sections=frozenset({section}) if section else frozenset())
    now = time.time()
    curation = services.holder.curation
    pins = {pin.target: pin for pin in recommender.overrides.pins_for(slug, now)}
    suggestions = [
        {
            **recommender.item(suggestion),
            "slot": slot,
            "age": _ago(float(recommender.published[suggestion.row]), now),
            "reasons": reasons(recommender.explain(row, suggestion.row)),
            "pinned": recommender.card(suggestion.row)["slug"] in pins,
        }
        for slot, suggestion in enumerate(recommender.related(slug, query, now), start=1)
    ]
    pinned, blocked, blocked_everywhere, audit = await services.holder.call_store(
        lambda: (
            curation.pins(slug),
            curation.blocks(slug),
            curation.blocks(global_only=True),
            curation.audit(slug, 100, everywhere=True),
        )
    )
    pins_here = [pin_json(pin, now) for pin in pinned]
    blocks_here = [block_json(b) for b in blocked]
    blocked_everywhere_json = [block_json(b) for b in blocked_everywhere]
    audit_json_rows = [audit_json(r) for r in audit]
    ctr = await ctr_report(services.events, slug)
    named = [pin["target"] for pin in pins_here]
    named += [block["target"] for block in blocks_here + blocked_everywhere_json]
    named += [record[key] for record in audit_json_rows for key in ("target", "source")]
    named += [row["target"] for row in ctr.get("by_target", [])]
    return _page(
        "editor_article.html",
        editor=editor,
        article=recommender.card(row),
        age=_ago(float(recommender.published[row]), now),
        index_version=recommender.version.id,
        limit=limit,
        section=section,
        suggestions=suggestions,
        pins=pins_here,
        blocks=blocks_here,
        global_blocks=blocked_everywhere_json,
        audit=audit_json_rows,
        titles=_titles(recommender, named),
        notice=notice,
        error=error,
        max_slot=MAX_SLOT,
        ctr=ctr,
    )


@router.get("/titles")
async def title_search(
    _: EditorDep,
    services: ServicesDep,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
) -> Response:
    """Articles whose title words start with the words typed (the pin form's lookup)."""
    recommender = services.holder.require()
    now = time.time()
    found = [
        {
            "slug": recommender.card(row)["slug"],
            "title": recommender.card(row)["title"],
            "section": recommender.card(row)["section"],
            "date": _ago(float(recommender.published[row]), now),
        }
        for row in recommender.search(q, limit)
    ]
    return JSONResponse(found, headers={"Cache-Control": "no-store"})


def _disk_line(settings: IndexSettings) -> str:
    """The status page's disk row: the warning when space is low, else what is free."""
    warning = low_space_warning(settings.data_dir, settings.disk_warn_mb)
    return warning or f"{free_bytes(settings.data_dir):,} bytes free for {settings.data_dir}"


@router.get("/status")
async def status_page(
    editor: EditorDep,
    services: ServicesDep,
    notice: Annotated[str, Query(max_length=500)] = "",
    error: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """The desk's dashboard: what is served, how fresh, cache and Redis, the busiest boxes."""
    recommender = services.holder.require()
    manifest = recommender.version.manifest
    now = time.time()
    built = datetime.fromisoformat(manifest.created_at)
    overlay = recommender.overlay
    curation = services.holder.curation
    ctr = await ctr_report(services.events, None)
    busiest = sorted(ctr["by_source"], key=lambda row: -row["impressions"])[:10]
    stats = services.cache.stats()
    experiment = services.experiments.current()
    stored = await services.holder.call_store(services.experiments.store.read)
    return _page(
        "editor_status.html",
        editor=editor,
        index_version=recommender.version.id,
        manifest=manifest,
        articles=len(recommender.cards),
        built=_ago(built.timestamp(), now),
        reindex_line=(
            f"{manifest.count} articles from {len(manifest.sources)} source(s), "
            f"model {manifest.model}, index {manifest.index.get('kind', '?')}, "
            f"recall@10 {manifest.recall_at_10:.3f}"
        ),
        listings=[str(Listing.from_dict(listing)) for listing in manifest.listings],
        cache={
            "status": services.cache.status(),
            "hits": stats.hits,
            "misses": stats.misses,
            "errors": stats.errors,
        },
        redis="configured" if services.settings.redis.url else "not configured (memory only)",
        counter_risk=await services.events.eviction_risk(),
        disk=_disk_line(services.settings.index),
        live={"upserts": len(overlay.rows), "retractions": len(overlay.retracted)},
        overrides={"pins": len(curation.pins()), "blocks": len(curation.blocks())},
        drafts=services.drafts.state(),
        busiest=busiest,
        ctr=ctr,
        titles=_titles(recommender, [row["source"] for row in busiest]),
        experiment=experiment,
        stored=stored,
        arms_text=orjson.dumps(stored.arms or EXAMPLE_ARMS, option=orjson.OPT_INDENT_2).decode(),
        figures=None if experiment is None else await _figures(services, experiment),
        share_text=share_text,
        notice=notice,
        error=error,
    )


async def _figures(services: ServicesDep, experiment: Experiment) -> ExperimentFigures:
    """The running experiment's figures, with what the impression log gained since the last
    view, read off the event loop."""

    return await asyncio.to_thread(services.experiment_figures.figures, experiment)


def _status(*, notice: str = "", error: str = "") -> RedirectResponse:
    """Post/redirect/get: back to the status page with what happened."""
    query = urlencode({k: v for k, v in (("notice", notice), ("error", error)) if v})
    return RedirectResponse("/editor/status" + (f"?{query}" if query else ""), 303)


@router.post("/experiment")
async def experiment_form(
    actor: EditorFormDep,
    services: ServicesDep,
    arms: Annotated[str, Form(max_length=20_000)] = "",
    version: Annotated[int, Form(ge=0)] = 0,
    stop: Annotated[bool, Form()] = False,
) -> Response:
    """Start, change or stop the A/B experiment, if no one changed it since the page showed."""
    try:
        given = None if stop else orjson.loads(arms)
    except orjson.JSONDecodeError as exc:
        return _status(error=f"The arms are not JSON: {exc}")
    try:
        await services.holder.call_store(lambda: services.experiments.change(given, actor, version))
    except StoreUnavailable:
        raise
    except RecommenderError as exc:
        return _status(error=str(exc))
    return _status(notice="Experiment stopped." if stop else "Experiment set.")


@router.get("/draft")
async def draft_page(editor: EditorDep, services: ServicesDep) -> Response:
    recommender = services.holder.require()
    return _page(
        "editor_draft.html",
        editor=editor,
        index_version=recommender.version.id,
        drafts=services.drafts.state(),
        max_summary=FIELD_LIMITS["summary"],
    )


#: Records per page of the site-wide audit page.
AUDIT_PAGE = 50
AuditAction = Literal["", "pin", "unpin", "block", "unblock"]


@router.get("/audit")
async def audit_page(
    editor: EditorDep,
    services: ServicesDep,
    action: Annotated[AuditAction, Query()] = "",
    article: Annotated[str, Query(max_length=MAX_SLUG_LENGTH)] = "",
    actor: Annotated[str, Query(max_length=60)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    """Every change to pins and blocks, newest first, by action, article and editor, paged."""
    recommender = services.holder.require()
    article, actor = article.strip(), actor.strip()
    curation = services.holder.curation
    records = await services.holder.call_store(
        lambda: curation.audit(
            article or None,
            AUDIT_PAGE + 1,  # one more tells whether there is an older page
            action=action or None,
            actor=actor or None,
            before=before,
        )
    )
    rows = [audit_json(record) for record in records[:AUDIT_PAGE]]
    filters = {k: v for k, v in (("action", action), ("article", article), ("actor", actor)) if v}
    older = (
        "/editor/audit?" + urlencode({**filters, "before": rows[-1]["id"]})
        if len(records) > AUDIT_PAGE
        else None
    )
    return _page(
        "editor_audit.html",
        editor=editor,
        index_version=recommender.version.id,
        records=rows,
        filters={"action": action, "article": article, "actor": actor},
        actions=[a for a in get_args(AuditAction) if a],
        newest="/editor/audit?" + urlencode(filters) if before is not None else None,
        older=older,
        titles=_titles(recommender, [r[key] for r in rows for key in ("source", "target")]),
    )


# Forms. Each applies one change through the same code as the JSON API, then redirects back.


def _until(value: str) -> datetime | None:
    """A `datetime-local` field, read as UTC (the page says so)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidQuery(f"`until` is not a date and time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _change(slug: str, apply: Callable[[], Awaitable[str]]) -> RedirectResponse:
    """Make one form's change; back to the article page saying what was done, or why not.
    An unreachable store is the service's 503, not a notice."""
    try:
        notice = await apply()
    except StoreUnavailable:
        raise
    except RecommenderError as exc:
        return _back(slug, error=str(exc))
    return _back(slug, notice=notice)


@router.post("/articles/{slug}/pins")
async def pin_form(
    slug: SlugPath,
    editor: EditorDep,
    actor: EditorFormDep,
    services: ServicesDep,
    target: TargetForm,
    slot: Annotated[int, Form(ge=1, le=MAX_SLOT)] = 1,
    until: Annotated[str, Form(max_length=40)] = "",
    reason: ReasonForm = "",
    confirmed: Annotated[bool, Form()] = False,
) -> Response:
    target = target.strip()
    score = _pin_score(services.holder.require(), slug, target)
    if score is not None and score < LOW_PIN_SCORE and not confirmed:
        return _page(
            "editor_confirm_pin.html",
            editor=editor,
            slug=slug,
            target=target,
            titles=_titles(services.holder.require(), [slug, target]),
            score=score,
            form={"slot": slot, "until": until, "reason": reason},
        )

    async def pin() -> str:
        await add_pin(services.holder, slug, target, slot, _until(until), reason, actor)
        return f"Pinned {_named(services.holder.require(), target)} to slot {slot}."

    return await _change(slug, pin)


def _pin_score(recommender: Recommender, source: str, target: str) -> float | None:
    """How close `target` is to `source` (semantic similarity); None when either is unknown."""
    try:
        rows = recommender.row_of(source), recommender.row_of(target)
    except ArticleNotFound:
        return None
    score: float = recommender.explain(*rows)["semantic"]
    return score


@router.post("/articles/{slug}/blocks")
async def block_form(
    slug: SlugPath,
    actor: EditorFormDep,
    services: ServicesDep,
    target: TargetForm,
    reason: ReasonForm = "",
    everywhere: Annotated[bool, Form()] = False,
) -> Response:
    async def block() -> str:
        await add_block(
            services.holder, None if everywhere else slug, target.strip(), reason, actor
        )
        named = _named(services.holder.require(), target.strip())
        return f"Blocked {named} {'everywhere' if everywhere else 'from this list'}."

    return await _change(slug, block)


@router.post("/articles/{slug}/unpin")
async def unpin_form(
    slug: SlugPath, actor: EditorFormDep, services: ServicesDep, target: TargetForm
) -> Response:
    async def unpin() -> str:
        holder = services.holder
        await holder.call_store(lambda: holder.curation.unpin(slug, target, actor))
        return f"Unpinned {_named(holder.require(), target)}."

    return await _change(slug, unpin)


@router.post("/articles/{slug}/unblock")
async def unblock_form(
    slug: SlugPath,
    actor: EditorFormDep,
    services: ServicesDep,
    target: TargetForm,
    everywhere: Annotated[bool, Form()] = False,
) -> Response:
    async def unblock() -> str:
        holder = services.holder
        source = None if everywhere else slug
        await holder.call_store(lambda: holder.curation.unblock(source, target, actor))
        return f"Unblocked {_named(holder.require(), target)}{' everywhere' if everywhere else ''}."

    return await _change(slug, unblock)


#: What an undo leaves, by the action it recorded (the inverse of the change undone).
_UNDONE = {
    "pin": "pinned again",
    "unpin": "no longer pinned",
    "block": "blocked again",
    "unblock": "no longer blocked",
}


@router.post("/articles/{slug}/undo/{audit_id}")
async def undo_form(
    slug: SlugPath,
    audit_id: Annotated[int, Path(ge=1)],
    actor: EditorFormDep,
    services: ServicesDep,
) -> Response:
    async def undo() -> str:
        holder = services.holder
        record = await holder.call_store(lambda: holder.curation.undo(audit_id, actor))
        named = _named(holder.require(), record.target)
        where = " everywhere" if record.source is None else ""
        return f"Undone: {named} is {_UNDONE[record.action]}{where}."

    return await _change(slug, undo)
