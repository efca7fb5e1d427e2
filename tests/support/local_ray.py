"""The Ray engine's tests run on a real, bounded local Ray instance (2 CPUs, no dashboard)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest


def require_ray() -> ModuleType:
    """The `ray` module; a failure, never a silent skip, where it is missing."""
    try:
        import ray
    except ImportError:
        pytest.fail(
            "Ray is missing: it is the [ray] extra, which `make install` installs "
            "(pip install -e '.[dev,ray]')",
            pytrace=False,
        )
    return ray


def local_ray_instance() -> Iterator[None]:
    """A module fixture's body: the instance while the module's tests run."""
    ray = require_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
