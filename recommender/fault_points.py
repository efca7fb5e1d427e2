"""Named places where a crash test kills the process on purpose (`RECOMMENDER_FAULT_POINT`).

A random SIGKILL cannot be replayed and never says where it landed. A test names one of these
points instead; the process sends itself SIGKILL on reaching it, so the kill lands exactly
there, every time, and the test knows it did (the exit is -9 only if the point was reached).
Unset, as in production, a point costs one comparison.
"""

from __future__ import annotations

import os
import signal

#: Every point, in the order a run meets them, and where it is.
POINTS: dict[str, str] = {
    "reindex-read": "reindex: the feeds read, the texts to embed and analyse put aside",
    "reindex-embedded": "reindex: every text embedded and cached, nothing built yet",
    "ray-worker-block": "reindex on Ray (--engine ray): a Ray worker, on starting a block of "
    "the analyse or neighbours stage (every try: Ray's retries run out)",
    "reindex-analysed": "reindex: every text's terms counted and cached",
    "reindex-indexed": "reindex: the vector index built, the signals not fitted",
    "reindex-fitted": "reindex: the signals fitted on the catalog, no neighbour list yet",
    "reindex-neighboured": "reindex: every neighbour list computed, nothing written",
    "reindex-staged": "reindex: the new version written in its staging directory, not renamed",
    "reindex-committed": "reindex: the version renamed into place, CURRENT not flipped",
    "reindex-published": "reindex: CURRENT flipped, the live upserts it absorbed not retired",
    "reindex-retired": "reindex: live upserts retired, old versions not pruned",
    "live-committed": "API: a live upsert or retraction committed, before the response",
}

_armed: str | None = None


def arm(point: str | None) -> None:
    """Kill this process when it reaches `point` (None: never)."""
    global _armed
    if point is not None and point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}; known: {', '.join(POINTS)}")
    _armed = point


def armed() -> str | None:
    """The armed point (None: none), to arm it in the processes a run starts (Ray workers)."""
    return _armed


def reached(point: str) -> None:
    """Mark `point`; the process dies here if it is the armed one."""
    if point == _armed:
        os.kill(os.getpid(), signal.SIGKILL)
