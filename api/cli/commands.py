"""`recommender`: the command-line face of the service (reindex, related, info, serve, ...).

Every error becomes one line and an exit code through `api.cli.cli_toolkit`.

Long (~580 lines): each command's options, help and examples are most of it; what commands
share is in `api.cli.cli_toolkit`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from api.cli.cli_toolkit import (
    BackendOption,
    BatchSizeOption,
    DataDirOption,
    DeviceOption,
    EngineOption,
    JsonOption,
    ProcessesOption,
    ThreadsOption,
    fail,
    print_json,
    run_command,
)
from api.cli.event_commands import events_app
from api.cli.help_format import WholeWordsGroup
from api.cli.policy_commands import evaluate_policy
from recommender import fault_points
from recommender.errors import (
    ArticleNotFound,
    RecommenderError,
)
from recommender.settings import Settings, settings_with

app = typer.Typer(
    help=(
        "Related-article recommendations for news sites.\n\n"
        "Configuration comes from RECOMMENDER_* environment variables "
        "(RECOMMENDER_DATA_DIR, RECOMMENDER_MODEL, ...) and REDIS_URL."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    cls=WholeWordsGroup,
)

T = TypeVar("T")


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"recommender {package_version('related-articles')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir else Settings()


@app.command(
    epilog=(
        "Examples:\n\n"
        "  recommender reindex --source feed.jsonl\n\n"
        "  recommender reindex --source articles/ --source extra.csv.gz --strict\n\n"
        "  recommender reindex --source feed.jsonl --full\n\n"
        "  recommender reindex --source smaller-feed.jsonl --allow-shrink\n\n"
        "  recommender reindex --source feed.jsonl --full --device cuda --batch-size 64\n\n"
        "  recommender reindex --source feed.jsonl --backend onnx-int8\n\n"
        "  RECOMMENDER_RAY_ADDRESS=auto recommender reindex --source feed.jsonl --engine ray\n\n"
        "  recommender reindex --source https://example.com/feed.xml\n\n"
        "  recommender reindex --source https://example.com/news-sitemap.xml --fetch-pages\n\n"
        "  recommender reindex --source wordpress+https://example.com\n\n"
        "  recommender reindex --source wordpress+https://example.com --allow-partial\n\n"
        "  recommender reindex --source export.csv --map headline=title --map link=url"
    )
)
def reindex(
    source: Annotated[
        list[str],
        typer.Option(
            "--source",
            "-s",
            metavar="FEED",
            help="Feed: a .jsonl/.csv/.txt file (optionally .gz) or a folder; an RSS/Atom feed "
            "or sitemap (.xml file or http(s):// URL); a WordPress site as "
            "wordpress+https://SITE. Repeatable.",
        ),
    ],
    fetch_pages: Annotated[
        bool,
        typer.Option(
            "--fetch-pages",
            help="Fetch each article's page and extract its text, date, author and image "
            "(for sitemaps and feeds that carry only links or teasers).",
        ),
    ] = False,
    field_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="NAME=FIELD",
            help="Read the JSONL/CSV field NAME as the article field FIELD, e.g. "
            "--map headline=title. Repeatable.",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Fail (exit 2, nothing published) on any bad record.")
    ] = False,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            help="Index the first RECOMMENDER_FETCH_MAX_PAGES pages of a longer WordPress "
            "listing, paged feed or sitemap index instead of failing (exit 2); the cut is "
            "logged and shown in the summary's listings.",
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            help="Rebuild in full: re-embed every article, refit the lexical statistics and "
            "recompute every neighbour list, instead of reusing what the served version holds."
        ),
    ] = False,
    allow_shrink: Annotated[
        bool,
        typer.Option(
            "--allow-shrink",
            help="Publish even if the catalog loses more of the served one than "
            "RECOMMENDER_MAX_SHRINK allows (default 10%; otherwise exit 65, nothing published).",
        ),
    ] = False,
    device: DeviceOption = None,
    backend: BackendOption = None,
    engine: EngineOption = None,
    batch_size: BatchSizeOption = None,
    threads: ThreadsOption = None,
    processes: ProcessesOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Build a new index version from feeds and publish it; print a one-line JSON summary."""
    from index.versions.ray_encoding import load_reindex_encoder
    from index.versions.reindex_pipeline import reindex as run_reindex
    from recommender.ingest.feeds import FeedReport, parse_source
    from recommender.ingest.field_map import parse_field_map
    from recommender.ingest.options import SourceChoices

    settings = settings_with(
        data_dir=data_dir,
        device=device,
        encoder_backend=backend,
        encode_engine=engine,
        batch_size=batch_size,
        threads=threads,
        encode_processes=processes,
    )
    fault_points.arm(settings.fault_point)
    report = FeedReport()
    show_progress = sys.stderr.isatty()
    choices = SourceChoices(
        field_map=run_command(lambda: parse_field_map(field_map or [])),
        fetch_pages=fetch_pages,
        allow_partial=allow_partial,
    )
    try:
        summary = run_command(
            lambda: run_reindex(
                settings.index,
                [parse_source(text) for text in source],
                load_reindex_encoder(settings.index, settings.encoder),
                strict=strict,
                full=full,
                allow_shrink=allow_shrink,
                show_progress=show_progress,
                report=report,
                choices=choices,
            )
        )
    finally:
        for line in report.summary_lines():
            typer.echo(line, err=True)
    _recount_clicks(settings)
    typer.echo(summary.to_json())


def _recount_clicks(settings: Settings) -> None:
    """The nightly recount of readers' clicks for the click signal (docs/learning.md); the
    version is published whatever happens here (workers then count the log themselves)."""
    from api.serving.click_counts import recount_to_file

    try:
        path, tally = recount_to_file(settings, time.time())
    except RecommenderError as exc:
        typer.echo(f"recommender: warning: click counts not recounted: {exc}", err=True)
        return
    typer.echo(f"click counts: {tally.events:,} events of the impression log in {path}", err=True)


@app.command(
    epilog="Examples:\n\n  recommender related putin-victory-alaska-summit --limit 3 --json"
)
def related(
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="The article's slug.")],
    limit: Annotated[
        int, typer.Option(metavar="N", min=1, max=50, help="How many suggestions.")
    ] = 5,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Show suggestions for an article from the current index version."""
    from api.serving.popular_articles import fallbacks_now
    from index.serving.version_loader import load_recommender
    from recommender.ranking import RelatedQuery

    settings = _settings(data_dir)
    recommender, warning = run_command(lambda: load_recommender(settings.index))
    if warning:
        typer.echo(f"recommender: warning: {warning}", err=True)
    fallbacks = run_command(lambda: fallbacks_now(settings, recommender))
    body = run_command(
        lambda: recommender.answer(slug, RelatedQuery(limit=limit), fallbacks=fallbacks)
    )
    if as_json:
        print_json(body)
        return
    for item in body["items"]:
        date = (item["published_at"] or "")[:10]
        typer.echo(f"{item['score']:.3f}  {item['slug']}  {item['title']}  {date}".rstrip())


@app.command(
    "export-neighbours",
    epilog=(
        "Examples:\n\n  recommender export-neighbours > related.jsonl\n\n"
        "  recommender export-neighbours --limit 8 --output related.jsonl"
    ),
)
def export_neighbours(
    limit: Annotated[
        int, typer.Option(metavar="N", min=1, max=50, help="Suggestions per article.")
    ] = 5,
    output: Annotated[
        Path | None, typer.Option(metavar="PATH", help="File to write (default: standard output).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write every article's suggestions as JSON Lines, for sites that render them statically.

    Each line is the body `GET /v1/articles/{slug}/related?limit=N` would answer now.
    """
    from api.serving.popular_articles import fallbacks_now
    from index.serving.version_loader import load_recommender
    from recommender.ranking import RelatedQuery

    settings = _settings(data_dir)
    recommender, warning = run_command(lambda: load_recommender(settings.index))
    if warning:
        typer.echo(f"recommender: warning: {warning}", err=True)
    query = RelatedQuery(limit=limit)
    now = time.time()
    fallbacks = run_command(lambda: fallbacks_now(settings, recommender))
    handle = output.open("wb") if output else sys.stdout.buffer
    try:
        for card in recommender.cards:
            try:
                body = recommender.answer(card["slug"], query, now, fallbacks)
            except ArticleNotFound:  # retracted or replaced since the build
                continue
            handle.write(orjson.dumps(body) + b"\n")
    finally:
        if output:
            handle.close()
        else:
            handle.flush()


db_app = typer.Typer(
    help="The shared PostgreSQL database (RECOMMENDER_DATABASE_URL) of live changes, editors' "
    "overrides and the audit trail.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
app.command(
    "evaluate-policy",
    epilog="Examples:\n\n"
    "  recommender evaluate-policy --since 2026-12-01\n\n"
    "  recommender evaluate-policy --since 2026-12-01 --candidate 'diversity=0.3' "
    "--candidate 'lexical_weight=0.8 time_weight=1' --json\n\n"
    "  recommender evaluate-policy --since 2026-12-01 --until 2026-12-07 --placement article-end",
)(evaluate_policy)


def _database_settings() -> Settings:
    settings = Settings()
    if settings.index.database.url is None:
        raise fail("RECOMMENDER_DATABASE_URL is not set: there is no shared database", 2)
    return settings


@db_app.command(
    epilog="Examples:\n\n  RECOMMENDER_DATABASE_URL=postgresql://db/related recommender db upgrade"
)
def upgrade() -> None:
    """Apply the schema migrations the database lacks (`recommender serve` applies them too)."""
    from index.state.postgres_database import PostgresState

    settings = _database_settings()

    def migrate() -> dict[str, Any]:
        postgres = PostgresState(settings.index.database, upgrade=False)
        try:
            applied = postgres.upgrade()
            return {"applied": applied, "schema_version": postgres.schema_version()}
        finally:
            postgres.close()

    print_json(run_command(migrate))


@db_app.command(
    "import",
    epilog="Examples:\n\n  recommender db import --from-sqlite /var/lib/recommender",
)
def import_(
    from_sqlite: Annotated[
        Path,
        typer.Option(
            "--from-sqlite",
            help="The data directory of a host that ran on SQLite (live.sqlite3, "
            "curation.sqlite3).",
            exists=True,
            file_okay=False,
        ),
    ],
) -> None:
    """Move a host's live changes, overrides and audit trail into the shared database (running
    it again changes nothing)."""
    from index.state.postgres_database import PostgresState
    from index.state.sqlite_import import import_sqlite

    settings = _database_settings()

    def move() -> dict[str, int]:
        postgres = PostgresState(settings.index.database)
        try:
            return import_sqlite(from_sqlite, postgres).public()
        finally:
            postgres.close()

    print_json({"imported": run_command(move)})


@app.command(epilog="Examples:\n\n  recommender info --json")
def info(as_json: JsonOption = False, data_dir: DataDirOption = None) -> None:
    """Describe the version being served."""
    from index.serving.version_loader import current_manifest
    from index.versions.vector_index import IndexSpec

    settings = _settings(data_dir)
    description = run_command(lambda: current_manifest(settings.index)).describe()
    spec = IndexSpec.from_dict(description["index"])
    # Only the parameters of the kind of index built: older manifests record them all.
    description["index"] = spec.to_dict()
    if as_json:
        print_json(description)
        return
    for label, value in _readable_info(description, spec.describe()):
        typer.echo(f"{label:<14}{value}")


def _readable_info(description: dict[str, Any], search: str) -> list[tuple[str, str]]:
    """`Manifest.describe()` as labelled lines for a person (`search`: the index, described)."""
    built = datetime.fromisoformat(description["built_at"]).astimezone(UTC)
    ranking = description["ranking"]
    weights = " · ".join(
        f"{name.removesuffix('_days').replace('_', ' ')} {value:g}"
        f"{' days' if name.endswith('_days') else ''}"
        for name, value in ranking.items()
    )
    return [
        ("Version", description["version"]),
        ("Built", f"{built.day} {built:%b %Y %H:%M} UTC"),
        ("Articles", f"{description['articles']:,}"),
        (
            "Model",
            f"{description['model']} ({description['model_id']}, "
            f"{description['dimension']} dimensions)",
        ),
        ("Search", search),
        ("Recall@10", f"{description['recall_at_10']:.3f} (of the index against exact search)"),
        ("Ranking", weights or "semantic only"),
    ]


@app.command(epilog="Examples:\n\n  recommender versions")
def versions(as_json: JsonOption = False, data_dir: DataDirOption = None) -> None:
    """List the versions on disk, oldest first; * marks the one being served."""
    from index.versions.version_store import VersionStore

    infos = VersionStore(_settings(data_dir).data_dir).list_versions()
    if as_json:
        print_json([asdict(info) for info in infos])
        return
    if not infos:
        typer.echo("no versions yet: run `recommender reindex --source FEED`")
    for info in infos:
        mark = "*" if info.current else " "
        typer.echo(f"{mark} {info.id}  {info.count:>8} articles  {info.created_at}")


@app.command(
    epilog=(
        "Examples:\n\n  recommender gc\n\n  recommender gc --dry-run\n\n"
        "Exit 75 while a reindex runs (nothing changed); 74 when the caches cannot be written "
        "(a disk full to the last byte: remove a file, then run again)."
    )
)
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Remove versions beyond RECOMMENDER_KEEP_VERSIONS and the cache entries no kept version,
    live change or recent fetch can use; print a one-line JSON of what went and the bytes freed.

    Safe while the API serves; waits for no reindex: it takes the reindex lock or exits 75.
    """
    from index.state.state_stores import open_stores
    from index.versions.cache_gc import collect_garbage
    from index.versions.reindex_lock import reindex_lock
    from index.versions.version_store import VersionStore

    settings = _settings(data_dir).index

    def collect() -> dict[str, Any]:
        with reindex_lock(settings.data_dir):
            stores = open_stores(settings)
            try:
                store = VersionStore(settings.data_dir)
                return collect_garbage(settings, store, stores.live, dry_run=dry_run).to_dict()
            finally:
                stores.close()

    print_json(run_command(collect))


@app.command(
    epilog=(
        "Examples:\n\n  recommender rollback\n\n"
        "  recommender rollback --to 20261124T230500123Z-1a2b3c"
    )
)
def rollback(
    to: Annotated[
        str | None,
        typer.Option(
            metavar="VERSION", help="Version to publish (default: the one before the current)."
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Publish an earlier version again (the API picks it up by itself).

    With RECOMMENDER_STORE_URL set, it becomes the shared store's CURRENT too, for every replica.
    """
    from index.versions.remote_store import RemoteStore
    from index.versions.version_store import VersionStore

    settings = _settings(data_dir)
    store = VersionStore(settings.data_dir)
    version = run_command(lambda: store.rollback(to))
    if (url := settings.index.store_url) is not None:
        run_command(lambda: RemoteStore(url).publish(store, version, settings.index.keep_versions))
    typer.echo(f"now serving {version}")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  recommender evaluate --source ../shared/data/allsides-neus-stories/articles.jsonl "
        "--relevance story_id\n\n"
        "  recommender evaluate --source feed.jsonl --qrels judged.tsv --k 10 --json\n\n"
        "  recommender evaluate --source ../shared/data/bbc-news/articles.jsonl "
        "--relevance category --plot quality.png"
    )
)
def evaluate(
    source: Annotated[
        list[Path],
        typer.Option("--source", "-s", metavar="FEED", help="Labelled feed(s). Repeatable."),
    ],
    relevance: Annotated[
        str | None,
        typer.Option(
            metavar="KIND",
            help="Label that makes articles relevant to each other: labels.FIELD or a "
            "top-level field such as category.",
        ),
    ] = None,
    qrels: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH", help="TSV of judgements: source_slug<TAB>related_slug<TAB>grade."
        ),
    ] = None,
    k: Annotated[
        int, typer.Option("--k", metavar="N", min=1, max=100, help="List length scored.")
    ] = 5,
    strategy: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Strategies to compare (repeatable; default: all)."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Also draw the metrics per strategy to this PNG."),
    ] = None,
    backend: BackendOption = None,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Score ranking strategies leave-one-out on a labelled feed (the served index is untouched)."""
    from index.evaluation import evaluate as run_evaluation
    from index.evaluation import prepare
    from recommender.encoding.encoder_factory import load_encoder
    from recommender.evaluation.relevance import LabelRelevance, QrelsRelevance, Relevance
    from recommender.ingest.feeds import FeedReport

    if (relevance is None) == (qrels is None):
        raise fail("give exactly one of --relevance FIELD and --qrels FILE", 2)
    settings = settings_with(data_dir=data_dir, encoder_backend=backend)
    report = FeedReport()
    data = run_command(
        lambda: prepare(
            settings.index,
            source,
            load_encoder(settings.encoder),
            show_progress=sys.stderr.isatty(),
            report=report,
        )
    )
    judgements: Relevance = (
        LabelRelevance.from_articles(data.articles, relevance)
        if relevance is not None
        else run_command(lambda: QrelsRelevance.from_file(qrels))  # type: ignore[arg-type]
    )
    result = run_command(lambda: run_evaluation(data, judgements, k=k, strategies=strategy or None))
    result = {"dataset": ", ".join(str(s) for s in source), **result}
    if plot is not None:
        from api.cli.evaluation_plot import plot_evaluation

        run_command(lambda: plot_evaluation(result, plot))
    if as_json:
        print_json(result)
        return
    for line in report.summary_lines(limit_per_kind=0)[:1]:
        typer.echo(line, err=True)
    typer.echo(format_evaluation(result))


def format_evaluation(result: dict[str, Any]) -> str:
    """The evaluation as an aligned text table."""
    from recommender.evaluation.metrics import METRIC_NAMES as names

    header = ["strategy", *(n.replace("_at_k", f"@{result['k']}") for n in names)]
    rows = [
        [name, *(f"{scores[n]:.4f}" for n in names)] for name, scores in result["results"].items()
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        f"{result['dataset']}: {result['articles']} articles, {result['sources']} sources, "
        f"k={result['k']}; default's time weight {result['ranking']['time']} x date "
        f"informativeness {result['ranking']['date_informativeness']}",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


#: How long a worker may leave uvicorn's supervisor unanswered before it is replaced.
WORKER_HEALTHCHECK_SECONDS = 60


@app.command(
    epilog=(
        "Examples:\n\n  recommender serve\n\n"
        "  recommender serve --host 0.0.0.0 --port 8080 --workers 2"
    )
)
def serve(
    host: Annotated[
        str | None, typer.Option(metavar="HOST", help="Bind address (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(metavar="PORT", help="Port (default 8000).")] = None,
    workers: Annotated[
        int | None, typer.Option(metavar="N", help="Worker processes (default 1).")
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (costs about a third of peak throughput).")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Run the HTTP API (uvicorn)."""
    from functools import partial

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.cli.header_timeout import HeaderTimeoutProtocol
    from api.worker_app import create_logged_app
    from index.state.state_stores import open_stores

    settings = settings_with(data_dir=data_dir, host=host, port=port, workers=workers)
    # Before uvicorn: a database that cannot be reached is one line and exit 69, not a worker's
    # start-up traceback (a host must not serve without the live changes it holds).
    run_command(lambda: open_stores(settings.index).close())
    config = uvicorn.Config(
        # Each worker builds its app from these settings (pickled to the worker processes).
        partial(create_logged_app, settings),
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=settings.server.workers,
        log_level="info",
        access_log=access_log,
        # X-Forwarded-For is believed from these proxies only (uvicorn's default: loopback).
        forwarded_allow_ips=list(settings.server.trusted_proxies),
        # uvicorn calls `http` as a class with its own arguments: a partial adds the bound.
        http=partial(  # type: ignore[arg-type]
            HeaderTimeoutProtocol, header_timeout=settings.server.header_timeout_seconds
        ),
        # uvicorn kills and replaces a worker that leaves its supervisor's ping unanswered this
        # long. Its default, 5 s, is shorter than a worker's start (imports, the version mapped)
        # on a busy host, and workers were then killed and restarted in a loop.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
