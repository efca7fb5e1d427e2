from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.local_ray import local_ray_instance


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray instance of 2 CPUs for the module's tests."""
    yield from local_ray_instance()
