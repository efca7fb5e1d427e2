"""Fixtures of the API tests: the synthetic corpus served by the app, with either backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.settings import Settings
from tests.support.helpers import ADMIN_TOKEN, build_fake_index, cache_options


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def cache_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for the in-memory or the Redis stores: a test that uses them runs on both."""
    return cache_options(request)


@pytest.fixture
def settings(tmp_path: Path, cache_backend: dict[str, Any]) -> Settings:
    """The synthetic corpus indexed with the fake encoder; admin routes take `ADMIN_TOKEN`.

    A test module with another corpus overrides this fixture, keeping `cache_backend`."""
    built, _ = build_fake_index(tmp_path / "data", admin_token=ADMIN_TOKEN, **cache_backend)
    return built


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app of `settings`, with its lifespan running."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client
