"""A stage's work run over blocks, results in block order: in this process (`LocalBlocks`), or
on Ray workers (`index.versions.ray_blocks.RayBlocks`, the `--engine ray` one).

A `BlockJob` is one function and what every block needs besides its own input (`shared`: the
fitted signal parts, the vector index, ...). An engine hands `shared` to each of its workers once,
not with every block, so a block carries only its own rows or texts. `run` must be a module-level
function (a Ray worker imports it by name) and give the same result wherever it runs, so both
engines build the same version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from recommender.settings import EncodeEngine

S = TypeVar("S")
B = TypeVar("B")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class BlockJob(Generic[S, B, R]):
    """`run(shared, block)` for each block of a stage."""

    stage: str
    """The reindex stage it is part of (named in errors)."""
    shared: S
    run: Callable[[S, B], R]


class BlockExecutor(Protocol):
    """Runs a job over blocks; yields each block's result in the order of the blocks, taking
    blocks from the iterable only as it has room for them (so a lazy iterable of texts is read
    a few blocks ahead, never whole)."""

    @property
    def engine(self) -> EncodeEngine:
        """Where the blocks run: the `engine` of a stage in the run's summary."""

    def map(self, job: BlockJob[S, B, R], blocks: Iterable[B]) -> Iterator[R]: ...


class LocalBlocks:
    """Every block in this process, one after the other."""

    @property
    def engine(self) -> EncodeEngine:
        return "local"

    def map(self, job: BlockJob[S, B, R], blocks: Iterable[B]) -> Iterator[R]:
        for block in blocks:
            yield job.run(job.shared, block)


LOCAL = LocalBlocks()
