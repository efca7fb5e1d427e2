"""The real model inside the API: `reindex --backend torch --processes 2` builds a small index
of demo articles with all-MiniLM in two embedding processes (`--processes` is a torch option:
with an ONNX backend it is refused, tests/e2e/test_cli_settings.py), and one `recommender
serve` per module (the packaged model, so its load is paid once) embeds drafts (`POST
/v1/related`) and live articles (`PUT /v1/articles/{slug}`) at request time. A server
configured for another model than the one a version was built with refuses it.

The demo articles come in story groups (`labels.story_id`: one story told by left, centre and
right outlets), so "related" has a known meaning here: the other articles of the same story.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recommender.encoding.encoder_protocol import FAKE_MODEL
from tests.support.helpers import REPO, write_jsonl
from tests.support.processes import ServeProcess

pytestmark = pytest.mark.model

TOKEN = "real-model-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ARTICLES = 60
#: The Dave Chappelle story of the demo corpus, told without one of its articles' words.
PARAPHRASE = "Performer's show angers LGBTQ viewers"
PARAPHRASED_STORY = "allsides-5612"


def demo_records() -> list[dict[str, Any]]:
    lines = (REPO / "demo" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:ARTICLES]]


def story(record: dict[str, Any]) -> str:
    story_id: str = record["labels"]["story_id"]
    return story_id


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RECOMMENDER_MODEL")}
    result = subprocess.run(
        [sys.executable, "-m", "console", *args],
        capture_output=True, text=True, env={**child_env, **env}, cwd=REPO, timeout=600,
    )  # fmt: skip
    return result


@pytest.fixture(scope="module")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """60 demo articles indexed with the packaged model by two torch embedding processes."""
    root = tmp_path_factory.mktemp("real-model")
    feed = write_jsonl(root / "demo-60.jsonl", demo_records())
    data_dir = root / "data"
    result = cli(
        "reindex", "--backend", "torch", "--processes", "2", "--source", str(feed),
        env={"RECOMMENDER_DATA_DIR": str(data_dir)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return data_dir, json.loads(result.stdout)


@pytest.fixture(scope="module")
def server(
    real_index: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """`recommender serve` with RECOMMENDER_MODEL unset: the packaged model."""
    data_dir, _ = real_index
    env = {"RECOMMENDER_DATA_DIR": str(data_dir), "RECOMMENDER_ADMIN_TOKEN": TOKEN}
    log = tmp_path_factory.mktemp("real-model-serve") / "serve.log"
    with (
        ServeProcess(env, log) as process,
        httpx.Client(base_url=process.url, timeout=120) as client,
    ):
        yield client


def test_reindex_with_two_processes_embeds_every_article_once(
    real_index: tuple[Path, dict[str, Any]],
) -> None:
    """The CLI run completes with every article embedded once; that two worker processes do the
    embedding is shown in tests/recommender/test_encoders.py."""
    _, summary = real_index
    assert summary["published"] is True
    assert summary["read"] == summary["indexed"] == summary["embedded"] == ARTICLES
    assert summary["reused"] == 0 and summary["bad"] == 0


def test_the_served_index_is_the_real_models(server: httpx.Client) -> None:
    info = server.get("/v1/index").json()
    assert info["articles"] == ARTICLES and info["model"] != FAKE_MODEL
    assert info["model"] in server.get("/metrics").text


def test_precomputed_lists_put_the_same_story_first(server: httpx.Client) -> None:
    records = demo_records()
    stories = {r["slug"]: story(r) for r in records}
    hits = 0
    for record in records[::3]:
        response = server.get(f"/v1/articles/{record['slug']}/related", params={"limit": 2})
        assert response.status_code == 200, response.text
        top = [item["slug"] for item in response.json()["items"]]
        hits += sum(stories[slug] == story(record) for slug in top)
    assert hits >= len(records[::3]), f"only {hits} same-story suggestions in the top 2"


def test_a_draft_is_embedded_at_request_time(server: httpx.Client) -> None:
    record = demo_records()[4]  # one story's article: its draft finds that story's other reports
    draft = {"title": record["title"], "summary": record["summary"], "limit": 3}
    response = server.post("/v1/related", json=draft)
    assert response.status_code == 200, response.text
    found = [item["slug"] for item in response.json()["items"]]
    stories = {r["slug"]: story(r) for r in demo_records()}
    siblings = {r["slug"] for r in demo_records() if story(r) == story(record)} - {record["slug"]}
    assert siblings and siblings <= set(found), found  # (the third: a related Kabul story)
    # A paraphrase shares no word with these articles: only the model can find the story.
    paraphrase = {"title": PARAPHRASE, "limit": 3}
    found = [item["slug"] for item in server.post("/v1/related", json=paraphrase).json()["items"]]
    assert stories[found[0]] == PARAPHRASED_STORY, found


def test_a_live_article_is_embedded_at_request_time(server: httpx.Client) -> None:
    fresh = {
        "title": PARAPHRASE, "section": "Arts", "published_at": "2021-07-01",  # no hint
        "url": "https://example.com/live-story",
    }  # fmt: skip
    put = server.put("/v1/articles/live-real-model", json=fresh, headers=AUTH)
    assert put.status_code == 200, put.text
    try:
        related = server.get("/v1/articles/live-real-model/related", params={"limit": 3})
        assert related.status_code == 200, related.text
        stories = {r["slug"]: story(r) for r in demo_records()}
        found = [item["slug"] for item in related.json()["items"]]
        assert found and stories[found[0]] == PARAPHRASED_STORY, found
    finally:  # the module's server is shared: leave its catalog as the other tests expect it
        deleted = server.delete("/v1/articles/live-real-model", headers=AUTH)
        assert deleted.status_code in (200, 204), deleted.text
    assert server.get("/v1/articles/live-real-model").status_code == 404


@pytest.mark.parametrize("configured", [FAKE_MODEL, "packaged"])
def test_a_version_built_with_another_model_is_refused(
    real_index: tuple[Path, dict[str, Any]], tmp_path: Path, configured: str
) -> None:
    """Served with the fake model, the real-model version is refused; and a fake-model version
    is refused by a server with the packaged model. Neither serves wrong vectors."""
    data_dir, _ = real_index
    env = {"RECOMMENDER_DATA_DIR": str(tmp_path / "data")}
    if configured == FAKE_MODEL:
        shutil.copytree(data_dir, tmp_path / "data")
        env["RECOMMENDER_MODEL"] = FAKE_MODEL
        built_with = "all-MiniLM"
    else:
        feed = write_jsonl(tmp_path / "feed.jsonl", demo_records()[:6])
        built = cli(
            "reindex", "--source", str(feed),
            env={**env, "RECOMMENDER_MODEL": FAKE_MODEL},
        )  # fmt: skip
        assert built.returncode == 0, built.stderr
        built_with = FAKE_MODEL
    with ServeProcess(env, tmp_path / "serve.log", ready_path="/healthz") as process:
        ready = httpx.get(f"{process.url}/readyz", timeout=30)
        assert ready.status_code == 503
        assert "was built with model" in ready.json()["detail"], ready.text
        assert built_with.lower() in ready.json()["detail"].lower()
        related = httpx.get(f"{process.url}/v1/articles/allsides-5612-left/related", timeout=30)
        assert related.status_code == 503 and related.json()["error"] == "index_not_ready"
    answer = cli("related", "allsides-5612-left", env=env)
    assert answer.returncode != 0 and "was built with model" in answer.stderr
