"""Keys of events a count has seen, each with when it was first seen, for counts that read the
end of a log again (its writers may add an event a little after its time): an event read again
is known. The owner forgets the keys older than a cut of its own; pruning mid-count waits, after
a pruning that kept many, for twice as many, so a busy stretch costs linear time, not a
rebuild for every further event."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

#: Keys held above which a count prunes mid-read.
PRUNE_AT = 100_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RememberedKeys(Generic[K, V]):
    """A value for each key seen, with the moment it was first seen."""

    def __init__(self) -> None:
        self._seen: dict[K, tuple[float, V]] = {}
        self._prune_at = PRUNE_AT

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: K) -> bool:
        return key in self._seen

    def get(self, key: K) -> V | None:
        found = self._seen.get(key)
        return None if found is None else found[1]

    def put(self, key: K, at: float, value: V) -> None:
        self._seen[key] = (at, value)

    @property
    def due(self) -> bool:
        """Whether so many keys are held that the owner should prune now."""
        return len(self._seen) >= self._prune_at

    def forget_before(self, cut: float) -> None:
        """Forget the keys first seen before `cut`."""
        self._seen = {key: seen for key, seen in self._seen.items() if seen[0] >= cut}
        self._prune_at = max(PRUNE_AT, 2 * len(self._seen))

    def items(self) -> Iterator[tuple[K, float, V]]:
        for key, (at, value) in self._seen.items():
            yield key, at, value
