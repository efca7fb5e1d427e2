"""The settings' flat names are a contract: each group reads its `RECOMMENDER_*` variables, every
variable is documented in docs/configuration.md (and nothing else is), and `reindex()` reads
feeds as the ingest group says, whoever calls it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from index.versions.reindex_pipeline import reindex
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.ingest.feeds import FeedReport
from recommender.settings import Settings, setting_names
from tests.support.helpers import REPO, fake_settings, synthetic_records, write_jsonl


def documented_names(known: list[str]) -> list[str]:
    """The variables of docs/configuration.md's table. A row may shorten its later names:
    `RECOMMENDER_REDIS_TLS_CA_FILE`, `_CERT_FILE` means RECOMMENDER_REDIS_TLS_CERT_FILE, the
    longest start of the first name that makes a known one (else RECOMMENDER_CERT_FILE)."""
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    names = []
    for cell in re.findall(r"^\| (`[^|]*`) \|", text, re.MULTILINE):
        first, *rest = re.findall(r"`([A-Z0-9_]+)`", cell)
        names.append(first)
        words = first.split("_")
        for short in rest:
            starts = ["_".join(words[:n]) for n in range(len(words) - 1, 0, -1)]
            matches = [start + short for start in starts if start + short in known]
            names.append((matches or [starts[-1] + short])[0])
    return names


def test_every_setting_is_documented_once_and_nothing_else_is() -> None:
    documented = documented_names(setting_names())
    assert len(documented) == len(set(documented))
    assert sorted(documented) == sorted(setting_names())


def test_the_flat_variables_fill_their_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECOMMENDER_ENCODER_CACHE_DIR", raising=False)  # the suite sets it
    monkeypatch.setenv("RECOMMENDER_DATA_DIR", "/srv/related")
    monkeypatch.setenv("RECOMMENDER_BATCH_SIZE", "32")
    monkeypatch.setenv("RECOMMENDER_FETCH_MAX_PAGES", "7")
    monkeypatch.setenv("RECOMMENDER_CORS_ORIGINS", '["https://news.example"]')
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    settings = Settings(lexical_weight=0.5)
    assert settings.index.data_dir == Path("/srv/related")
    assert settings.encoder.batch_size == 32
    assert settings.encoder.export_dir == Path("/srv/related/encoders")
    assert settings.index.ingest.max_pages == 7
    assert settings.server.cors_origins == ("https://news.example",)
    assert settings.redis.url == "redis://cache:6379/0"
    assert settings.index.fusion["lexical"] == 0.5
    assert settings.replaced(data_dir=Path("/tmp/x")).encoder.export_dir == Path("/tmp/x/encoders")


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="bogus"):
        Settings(bogus=1)


def test_reindex_reads_feeds_with_the_ingest_settings_without_the_cli(tmp_path: Path) -> None:
    records = synthetic_records()
    records[0] = {**records[0], "body": "long " * 1_000}  # 5 kB: over a 2 kB record limit
    feed = write_jsonl(tmp_path / "feed.jsonl", records)
    report = FeedReport()
    settings = fake_settings(tmp_path / "data", feed_max_record_bytes=2_048)
    summary = reindex(settings.index, [feed], HashingEncoder(), report=report)
    assert summary.indexed == len(records) - 1
    [problem] = report.bad
    assert problem.line == 1
