"""Incremental nightly runs (issue 30, point 2): when a run rebuilds in full and why, what an
incremental one reuses, how close it stays to a full rebuild, and that a killed one changes
nothing served."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.serving.version_loader import load_current, load_recommender
from index.versions.manifest import MANIFEST_NAME
from index.versions.reindex_pipeline import ReindexSummary, reindex
from index.versions.version_store import VersionStore
from recommender.articles import EMBEDDING_LEAD_CHARS
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.ranking import RelatedQuery
from recommender.settings import Settings
from recommender.signals.tfidf_cosine import load_vocabulary
from tests.support.helpers import cli_reindex, fake_settings, synthetic_records, write_jsonl

#: Small lists, so that a catalog of a few dozen articles does not fill them all.
NEIGHBOURS = 8


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    return fake_settings(data_dir, neighbours=NEIGHBOURS, **overrides)


def _run(
    settings: Settings, records: list[dict[str, Any]], name: str, *, full: bool = False
) -> ReindexSummary:
    feed = write_jsonl(settings.data_dir.parent / f"{name}.jsonl", records)
    return reindex(settings.index, [feed], HashingEncoder(), full=full)


def _lists(settings: Settings) -> dict[str, list[tuple[str, float]]]:
    """slug -> its neighbour list as (slug, score), whatever the rows' order (equal scores,
    which a build orders by row, by slug)."""
    version, _ = load_current(settings.index)
    slugs = [card["slug"] for card in version.cards]
    lists = {}
    for row in range(version.size):
        listed = zip(version.neighbour_ids[row], version.neighbour_scores[row], strict=True)
        entries = [(slugs[int(i)], round(float(s), 5)) for i, s in listed if i >= 0]
        lists[slugs[row]] = sorted(entries, key=lambda entry: (-entry[1], entry[0]))
    return lists


def _catalog() -> list[dict[str, Any]]:
    return synthetic_records(per_topic=8)  # 48 articles in six topics


def test_a_run_without_a_change_of_statistics_lists_exactly_what_a_full_rebuild_does(
    tmp_path: Path,
) -> None:
    records = _catalog()
    nightly = _settings(tmp_path / "nightly")
    assert _run(nightly, records, "first").rebuild == "full"
    # Rows in another order and a section changed: no text, no date, no statistic moves.
    records = records[::-1]
    records[5] = {**records[5], "section": "elsewhere"}
    incremental = _run(nightly, records, "second")
    assert (incremental.rebuild, incremental.published) == ("incremental", True)
    fresh = _settings(tmp_path / "fresh")
    _run(fresh, records, "full", full=True)
    assert _lists(nightly) == _lists(fresh)
    for name in ("lexical", "bm25"):
        assert _rows_by_term(nightly, name) == _rows_by_term(fresh, name), name


def _rows_by_term(settings: Settings, signal: str) -> dict[str, dict[str, float]]:
    """slug -> the signal's row of the article as term -> weight (columns differ by build)."""
    version = load_current(settings.index)[0]
    terms = version.signals["lexical"].terms
    matrix = version.side.features[signal]
    return {
        card["slug"]: {
            terms[int(column)]: round(float(value), 5)
            for column, value in zip(matrix[row].indices, matrix[row].data, strict=True)
        }
        for row, card in enumerate(version.cards)
    }


def test_an_edit_past_the_embeddings_lead_is_published_and_weighs(tmp_path: Path) -> None:
    """The embedding reads a body's first EMBEDDING_LEAD_CHARS only; the lexical signals read
    all of it, so a correction near the end of a long article is a change too."""
    records = _catalog()
    filler = " ".join(["The council met again on Tuesday evening."] * 60)
    records[3] = {**records[3], "body": records[3]["body"] + " " + filler}
    assert len(records[3]["body"]) > 2 * EMBEDDING_LEAD_CHARS
    nightly = _settings(tmp_path / "nightly")
    first = _run(nightly, records, "first")
    records[3] = {**records[3], "body": records[3]["body"] + " Correction: Reykjavik airport."}
    second = _run(nightly, records, "second")
    assert (second.rebuild, second.published) == ("incremental", True)
    assert second.version != first.version
    assert second.rebuild_reason.startswith("1 changed, 0 added, 0 removed")
    assert "reykjavik" in _rows_by_term(nightly, "lexical")[records[3]["slug"]]


def test_an_incremental_run_weighs_only_the_changed_articles_and_keeps_the_fit(
    tmp_path: Path,
) -> None:
    records = _catalog()
    nightly = _settings(tmp_path / "nightly")
    first = _run(nightly, records[:-1], "first")
    records[3] = {**records[3], "body": records[3]["body"] + " Reykjavik airport reopened"}
    del records[10]  # and the last one is new
    second = _run(nightly, records, "second")
    assert second.rebuild == "incremental"
    assert second.rebuild_reason.startswith("1 changed, 1 added, 1 removed")
    version = load_current(nightly.index)[0]
    fit = version.manifest.lexical_fit
    assert fit is not None
    assert (fit["version"], fit["count"], fit["changed"]) == (first.version, 47, 3)
    # The idf of the last full fit is kept; the words it never saw are appended and weigh.
    model = version.signals["lexical"].model
    assert "reykjavik" in model.vocabulary and "airport" in model.vocabulary
    served = VersionStore(nightly.data_dir).path_of(first.version)
    first_idf = np.load(served / "vocabulary.idf.npy")
    assert np.array_equal(model.idf[: len(first_idf)], first_idf)
    row = version.rows[records[3]["slug"]]
    assert version.side.features["lexical"][row, model.vocabulary["reykjavik"]] > 0
    # The terms it had keep their columns, so the copied rows still mean the same words.
    fitted = load_vocabulary(served)
    assert all(model.vocabulary[term] == fitted.vocabulary[term] for term in fitted.vocabulary)
    # A draft with the new word is weighed and ranked against the extended vocabulary.
    recommender, _ = load_recommender(nightly.index)
    text = "Reykjavik airport reopened after the volcano eruption"
    vector = HashingEncoder().encode([text])[0]
    draft = recommender.answer_draft(vector, text, RelatedQuery(limit=3))
    assert draft["items"][0]["slug"] == records[3]["slug"]
    # Close to a full rebuild of the same catalog: the first entries of most lists agree. Not
    # all: the idf and each article's local-scaling mean and spread stay those of the last full
    # fit, and here 3 changes of 48 articles move a third of every pool of 16 (without local
    # scaling all agree; with it 0.94; `recommender bench chain` measures real catalogs).
    fresh = _settings(tmp_path / "fresh")
    _run(fresh, records, "full", full=True)
    got, expected = _lists(nightly), _lists(fresh)
    top = [
        len({s for s, _ in got[slug][:3]} & {s for s, _ in expected[slug][:3]}) / 3
        for slug in expected
    ]
    assert np.mean(top) >= 0.92


def _drop_lexical_fit(settings: Settings) -> None:
    """Make the served version look like one built before `lexical_fit` was recorded."""
    path = VersionStore(settings.data_dir).current_path() / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest.pop("lexical_fit")
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("full", "--full was given"),
        ("old", "days old, RECOMMENDER_FULL_REBUILD_DAYS is 0"),
        ("drift", "above RECOMMENDER_INCREMENTAL_DRIFT_MAX 0.01"),
        ("ranking", "the model, the ranking parameters or the signals changed"),
        ("unrecorded", "records no lexical fit"),
        ("none", ""),
    ],
)
def test_each_reason_for_a_full_rebuild(tmp_path: Path, change: str, reason: str) -> None:
    records = _catalog()
    settings = _settings(tmp_path / "data")
    first = _run(settings, records, "first")
    assert (first.rebuild, first.rebuild_reason) == ("full", "first run: no version is served")
    records[0] = {**records[0], "title": "Volcano: a corrected headline"}
    settings_of: dict[str, dict[str, Any]] = {
        "old": {"full_rebuild_days": 0},
        "drift": {"incremental_drift_max": 0.01},
        "ranking": {"lexical_weight": 0.5},
    }
    overrides = settings_of.get(change, {})
    if change == "unrecorded":
        _drop_lexical_fit(settings)
    second = _run(
        _settings(settings.data_dir, **overrides), records, "second", full=change == "full"
    )
    version = load_current(settings.index)[0]
    assert version.id == second.version
    fit = version.manifest.lexical_fit
    assert fit is not None
    if change == "none":
        assert second.rebuild == "incremental"
        assert (fit["version"], fit["changed"]) == (first.version, 1)
        return
    assert second.rebuild == "full" and reason in second.rebuild_reason
    # A full rebuild starts a new fit: its own.
    assert (fit["version"], fit["count"], fit["changed"]) == (second.version, 48, 0)


def test_the_drift_adds_up_over_runs_until_a_full_rebuild(tmp_path: Path) -> None:
    records = _catalog()
    settings = _settings(tmp_path / "data", incremental_drift_max=0.05)  # 2 of 48 articles
    _run(settings, records, "first")
    kinds = []
    for night in range(3):
        records[night] = {**records[night], "title": f"Corrected on night {night}"}
        kinds.append(_run(settings, records, f"night-{night}").rebuild)
    assert kinds == ["incremental", "incremental", "full"]


def _cli_reindex(
    data_dir: Path, feed: Path, *args: str, point: str | None = None
) -> subprocess.CompletedProcess[str]:
    return cli_reindex(data_dir, feed, *args, point=point, RECOMMENDER_NEIGHBOURS=str(NEIGHBOURS))


def test_reindex_full_forces_a_full_rebuild_and_says_so(tmp_path: Path) -> None:
    records = _catalog()
    data_dir = tmp_path / "data"
    assert _cli_reindex(data_dir, write_jsonl(tmp_path / "a.jsonl", records)).returncode == 0
    records[0] = {**records[0], "title": "Volcano: a corrected headline"}
    feed = write_jsonl(tmp_path / "b.jsonl", records)
    summaries = []
    for args in ((), ("--full",)):
        result = _cli_reindex(data_dir, feed, *args)
        assert result.returncode == 0, result.stderr
        summaries.append(json.loads(result.stdout))
    assert [s["rebuild"] for s in summaries] == ["incremental", "full"]
    assert summaries[1]["rebuild_reason"] == "--full was given"


@pytest.mark.parametrize(
    "point", ["reindex-analysed", "reindex-indexed", "reindex-fitted", "reindex-neighboured",
              "reindex-staged", "reindex-committed"],
)  # fmt: skip
def test_a_killed_incremental_run_leaves_the_served_version_untouched(
    tmp_path: Path, point: str
) -> None:
    records = _catalog()
    data_dir = tmp_path / "data"
    first = _cli_reindex(data_dir, write_jsonl(tmp_path / "a.jsonl", records))
    assert first.returncode == 0, first.stderr
    served = json.loads(first.stdout)["version"]
    before = _lists(fake_settings(data_dir, neighbours=NEIGHBOURS))
    records[0] = {**records[0], "title": "Volcano: a corrected headline"}
    feed = write_jsonl(tmp_path / "b.jsonl", records)
    killed = _cli_reindex(data_dir, feed, point=point)
    assert killed.returncode == -signal.SIGKILL, f"{point} was not reached:\n{killed.stderr}"
    settings = fake_settings(data_dir, neighbours=NEIGHBOURS)
    version, warning = load_current(settings.index)
    assert warning is None and version.id == served and _lists(settings) == before
    again = _cli_reindex(data_dir, feed)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["rebuild"] == "incremental"  # what the killed run was
