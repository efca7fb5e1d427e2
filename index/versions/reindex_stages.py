"""Each stage of a reindex timed, with the process's peak resident memory while it ran: the
`stages` of the run's summary line, and one INFO line per stage.

The peak is the kernel's own high-water mark (`VmHWM` in /proc/self/status), reset at the start
of each stage by writing "5" to /proc/self/clear_refs, so a stage's figure is its own and costs
nothing while it runs. Where the reset is refused (or on a system without /proc) the figure is
the process's peak so far (`getrusage`), an upper bound of the stage's own.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from recommender.settings import EncodeEngine

log = logging.getLogger(__name__)

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StageFigures:
    """One stage of a run: what a scheduler reads in the summary's `stages`."""

    stage: str
    seconds: float
    peak_memory_mb: float
    engine: EncodeEngine
    """Where its work ran: "local" (this process) or "ray" (the driver and Ray's workers; the
    peak memory is the driver's)."""

    def to_dict(self) -> dict[str, str | float]:
        return asdict(self)


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process; False where that is not allowed."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _peak_bytes() -> int:
    """The process's peak resident memory: since the last reset where /proc has it."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes there, KiB elsewhere


class StageMeter:
    """The stages of one run, in the order they ran."""

    def __init__(self) -> None:
        self.stages: list[StageFigures] = []

    @contextmanager
    def stage(self, name: str, engine: EncodeEngine = "local") -> Iterator[None]:
        """Time the block as stage `name`, run on `engine`, and record its peak memory (when it
        completes)."""
        _reset_peak()
        started = time.monotonic()
        yield
        figures = StageFigures(
            name, round(time.monotonic() - started, 3), round(_peak_bytes() / _MB, 1), engine
        )
        self.stages.append(figures)
        log.info(
            "reindex stage %s (%s): %.2f s, peak memory %.1f MB",
            name,
            engine,
            figures.seconds,
            figures.peak_memory_mb,
        )

    def to_list(self) -> list[dict[str, str | float]]:
        """The `stages` of a summary line."""
        return [figures.to_dict() for figures in self.stages]
