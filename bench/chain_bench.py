"""`recommender bench chain`: how far a week of incremental nightly runs drifts from a full
rebuild (issue 30, point 2), with the hashing encoder.

    catalog   the first N articles of a labelled feed, indexed in full
    nights    `--nights` incremental runs in a row, each with `--changed` of the catalog changed:
              two fifths edited (a sentence dropped, a revision line added), three tenths
              removed, three tenths added (the feed's next articles, unseen words and all)
    full      a full rebuild (`--full`) of the last night's catalog, in a data directory of its own
    compare   overlap@5 of every article's served list (the incremental and the full version),
              and nDCG@5 of both on the feed's labels; the verdict holds both to issue 30's
              tolerance (overlap >= 0.99, |delta nDCG@5| <= 0.002)
"""

from __future__ import annotations

import gzip
import random
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
import typer

from api.cli.cli_toolkit import JsonOption, fail
from bench.archive_catalog import revised
from bench.report import BenchError, format_rows, say
from index.serving.version_loader import load_recommender
from index.versions.reindex_pipeline import ReindexSummary, reindex
from recommender.articles import Article, validate_record
from recommender.encoding.encoder_protocol import FAKE_MODEL
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.evaluation.metrics import ndcg_at_k
from recommender.evaluation.relevance import LabelRelevance
from recommender.ranking import RelatedQuery
from recommender.settings import Settings

OVERLAP_MIN = 0.99
NDCG_DELTA_MAX = 0.002
K = 5
#: Of the articles a night changes: edited, removed, and the rest added.
EDITED, REMOVED = 0.4, 0.3
EXAMPLES = (
    "Examples:\n\n"
    "  recommender bench chain --feed ../shared/data/bbc-news/articles.jsonl --label category\n\n"
    "  recommender bench chain --feed ../shared/data/allsides-abp-37k/articles.jsonl.gz "
    "--label labels.topic --articles 3000 --json"
)


@dataclass(frozen=True, slots=True)
class Night:
    edited: int
    removed: int
    added: int
    summary: ReindexSummary

    def to_dict(self) -> dict[str, Any]:
        return {
            "edited": self.edited,
            "removed": self.removed,
            "added": self.added,
            "rebuild": self.summary.rebuild,
            "rebuild_reason": self.summary.rebuild_reason,
            "seconds": self.summary.seconds,
        }


def read_records(feed: Path, count: int) -> list[dict[str, Any]]:
    """The first `count` records of a JSON Lines feed (gzip-compressed when it ends in .gz)."""
    opener = gzip.open if feed.suffix == ".gz" else open
    records = []
    with opener(feed, "rb") as lines:
        for line in lines:
            if line.strip():
                records.append(orjson.loads(line))
            if len(records) == count:
                break
    return records


def change_catalog(
    catalog: list[dict[str, Any]],
    spare: list[dict[str, Any]],
    share: float,
    rng: random.Random,
    night: int,
) -> tuple[int, int, int]:
    """Change `share` of `catalog` in place (edits, removals, additions taken from `spare`);
    returns how many were edited, removed and added."""
    changed = max(3, round(len(catalog) * share))
    edited, removed = max(1, round(changed * EDITED)), max(1, round(changed * REMOVED))
    added = min(len(spare), changed - edited - removed)
    for row in rng.sample(range(len(catalog)), edited):
        catalog[row] = revised(catalog[row], f"{night}.{row}", rng)
    for row in sorted(rng.sample(range(len(catalog)), removed), reverse=True):
        del catalog[row]
    catalog += [spare.pop(0) for _ in range(added)]
    return edited, removed, added


def bench_settings(data_dir: Path) -> Settings:
    """The hashing encoder over `data_dir` alone: no shared database or version store of the
    environment's is touched."""
    return Settings(data_dir=data_dir, model=FAKE_MODEL, database_url=None, store_url=None)


def build(data_dir: Path, records: Sequence[dict[str, Any]], *, full: bool) -> ReindexSummary:
    """Reindex `records` into `data_dir` with the hashing encoder."""
    feed = data_dir.parent / f"{data_dir.name}-feed.jsonl"
    feed.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return reindex(bench_settings(data_dir).index, [feed], HashingEncoder(), full=full)


def served_top(data_dir: Path, slugs: Sequence[str]) -> dict[str, list[str]]:
    """Each article's served list (its first K), from the data directory's current version."""
    recommender, _ = load_recommender(bench_settings(data_dir).index)
    query = RelatedQuery(limit=K)
    return {
        slug: [item["slug"] for item in recommender.answer(slug, query)["items"]] for slug in slugs
    }


def compare(
    incremental: dict[str, list[str]],
    full: dict[str, list[str]],
    articles: Sequence[Article],
    label: str,
) -> dict[str, float]:
    """overlap@K of the two versions' lists and nDCG@K of each on the articles' `label`."""
    overlaps = [
        len(set(incremental[slug]) & set(items)) / len(items)
        for slug, items in full.items()
        if items
    ]
    relevance = LabelRelevance.from_articles(articles, label.removeprefix("labels."))
    judged = [slug for slug in full if relevance.relevant(slug)]
    if not judged:
        raise BenchError(f"no article of the feed has a relevant one by the label {label!r}")
    ndcg_incremental = float(
        np.mean([ndcg_at_k(incremental[s], relevance.relevant(s), K) for s in judged])
    )
    ndcg_full = float(np.mean([ndcg_at_k(full[s], relevance.relevant(s), K) for s in judged]))
    return {
        "overlap_at_5": round(float(np.mean(overlaps)), 4),
        "ndcg_at_5_incremental": round(ndcg_incremental, 4),
        "ndcg_at_5_full": round(ndcg_full, 4),
        "ndcg_at_5_delta": round(ndcg_incremental - ndcg_full, 4),
        "judged_sources": len(judged),
    }


def run_chain(
    feed: Path,
    label: str,
    articles: int,
    nights: int,
    changed: float,
    seed: int,
    work_dir: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The report of the module's docstring."""
    spare_count = nights * max(3, round(articles * changed))
    records = read_records(feed, articles + spare_count)
    if len(records) <= articles:
        raise BenchError(f"{feed} holds {len(records)} records: too few for {articles} and spares")
    catalog, spare = records[:articles], records[articles:]
    rng = random.Random(seed)
    say(f"full reindex of {len(catalog):,} articles ...")
    first = build(work_dir / "incremental", catalog, full=False)
    runs = []
    for night in range(1, nights + 1):
        edited, removed, added = change_catalog(catalog, spare, changed, rng, night)
        summary = build(work_dir / "incremental", catalog, full=False)
        runs.append(Night(edited, removed, added, summary))
        say(f"night {night}: {summary.rebuild} ({summary.rebuild_reason}), {summary.seconds} s")
    say("full rebuild of the last night's catalog ...")
    full = build(work_dir / "full", catalog, full=True)
    known = [validate_record(record).article for record in catalog]
    slugs = [article.slug for article in known]  # as served (lowercased)
    figures = compare(
        served_top(work_dir / "incremental", slugs),
        served_top(work_dir / "full", slugs),
        known,
        label,
    )
    passed = (
        figures["overlap_at_5"] >= OVERLAP_MIN and abs(figures["ndcg_at_5_delta"]) <= NDCG_DELTA_MAX
    )
    nightly = [run.summary.seconds for run in runs]
    return {
        "feed": str(feed),
        "label": label,
        "articles": len(catalog),
        "first_seconds": first.seconds,
        "full_seconds": full.seconds,
        "nightly_seconds_max": max(nightly),
        "nightly_ratio_max": round(max(nightly) / full.seconds, 4),
        "nights": [run.to_dict() for run in runs],
        **figures,
        "targets": {"overlap_at_5_min": OVERLAP_MIN, "ndcg_at_5_delta_max": NDCG_DELTA_MAX},
        "verdict": "PASS" if passed else "FAIL",
    }


def format_report(report: dict[str, Any]) -> str:
    rows = [
        [str(at), str(n["edited"]), str(n["removed"]), str(n["added"]), n["rebuild"],
         f"{n['seconds']:.2f}"]
        for at, n in enumerate(report["nights"], 1)
    ]  # fmt: skip
    table = format_rows(["night", "edited", "removed", "added", "rebuild", "seconds"], rows)
    return "\n".join(
        [
            f"{report['feed']}: {report['articles']:,} articles, label {report['label']}",
            table,
            f"full rebuild {report['full_seconds']:.2f} s; slowest night / full "
            f"{report['nightly_ratio_max']:.3f}",
            f"overlap@5 incremental vs full: {report['overlap_at_5']:.4f} "
            f"(target >= {OVERLAP_MIN})",
            f"nDCG@5: incremental {report['ndcg_at_5_incremental']:.4f}, full "
            f"{report['ndcg_at_5_full']:.4f}, delta {report['ndcg_at_5_delta']:+.4f} "
            f"(target |delta| <= {NDCG_DELTA_MAX}; {report['judged_sources']:,} sources)",
            f"verdict: {report['verdict']}",
        ]
    )


@contextmanager
def _work_directory(kept: Path | None) -> Iterator[Path]:
    if kept is not None:
        kept.mkdir(parents=True, exist_ok=True)
        yield kept
        return
    with tempfile.TemporaryDirectory(prefix="chain-") as directory:
        yield Path(directory)


def bench_chain(
    feed: Annotated[
        Path, typer.Option(metavar="PATH", help="A labelled JSON Lines feed (.jsonl or .jsonl.gz).")
    ],
    label: Annotated[
        str,
        typer.Option(
            metavar="FIELD",
            help="Label that makes articles relevant to each other: labels.FIELD or a "
            "top-level field such as category (as `recommender evaluate --relevance`).",
        ),
    ],
    articles: Annotated[
        int, typer.Option(min=20, help="Articles in the catalog (the feed's first N).")
    ] = 600,
    nights: Annotated[int, typer.Option(min=1, help="Incremental nightly runs in a row.")] = 7,
    changed: Annotated[
        float,
        typer.Option(min=0.0, max=0.5, help="Share of the catalog each night changes."),
    ] = 0.01,
    seed: Annotated[int, typer.Option(help="Seed of the changes.")] = 0,
    work_dir: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Keep the data directories here (default: removed)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A week of incremental nightly runs against a full rebuild: overlap@5, nDCG@5, verdict."""
    if not feed.is_file():
        raise fail(f"{feed}: no such feed", 66)

    try:
        with _work_directory(work_dir) as directory:
            report = run_chain(feed, label, articles, nights, changed, seed, directory, say)
    except BenchError as exc:
        raise fail(str(exc), 1) from exc
    if as_json:
        typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(format_report(report))
    if report["verdict"] != "PASS":
        raise typer.Exit(1)
