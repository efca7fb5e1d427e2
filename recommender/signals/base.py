"""What a ranking signal is: `RankingSignal`, and the views of articles it scores.

A hybrid score is the sum, over the registered signals (`recommender.signals.registry`), of each
signal's weight times its score of a (source, candidate) pair; a signal that `rescales` instead
maps the sum of those before it (local scaling). A signal may keep something in
each index version (the TF-IDF vocabulary and rows, say): its *part*, an object only the signal
reads, fitted from the catalog at reindex, saved into the version's files, loaded back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from recommender.ranking import FusionWeights
from recommender.tfidf import CatalogTerms

PoolScores = Callable[
    [NDArray[np.int64], Mapping[str, Any], FusionWeights],
    tuple[NDArray[np.int64], NDArray[np.float32]],
]
"""rows, parts, weights -> each row's candidate pool (the one its list is chosen from; -1 pads)
and the hybrid scores of its pairs under the signals whose parts are given (those registered
before the one asking: `LocalScaling`)."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """What signals are fitted on at reindex: the catalog's articles, by row."""

    terms: CatalogTerms
    """The articles' lexical texts, analysed (with their proper nouns when the ranking boosts
    them: `name_boost`), by row."""
    vectors: NDArray[np.float32]
    published: NDArray[np.float64]
    """Epoch seconds, NaN when unknown."""
    nearest: Callable[[NDArray[np.int64], int], NDArray[np.int64]]
    """rows, k -> each row's k nearest other rows by meaning (-1 pads)."""
    block: int
    """Rows a signal's fit should handle at once, so its temporaries stay small."""
    pools: PoolScores


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """A catalog as an incremental reindex sees it: which rows the served version's parts
    already hold, and the analyses of the others (`RankingSignal.update`)."""

    reused: NDArray[np.int64]
    """By row of the new catalog: the served version's row of the same, unchanged article, or
    -1 where the article is new or changed."""
    terms: CatalogTerms
    """The lexical analyses of the new and changed rows (`weighed`), in row order."""
    block: int
    pools: PoolScores
    """Over the new catalog, as `Catalog.pools`."""
    weights: FusionWeights
    """The parameters of the served version, which an incremental run keeps."""

    @property
    def weighed(self) -> NDArray[np.int64]:
        """The rows whose parts are computed anew."""
        return np.flatnonzero(self.reused < 0)


@dataclass(frozen=True, slots=True)
class Side:
    """Articles as signals score them: a version's rows, or the live articles over one."""

    vectors: NDArray[np.float32]
    published: NDArray[np.float64]
    features: Mapping[str, Any]
    """Signal name -> what that signal keeps of these articles, by row (`RankingSignal.rows`,
    `RankingSignal.stack`)."""


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate rows of one side, with their semantic cosine to the source."""

    side: Side
    rows: NDArray[np.int64]
    """Rows of `side`; -1 pads (what signals score there is ignored)."""
    cosines: NDArray[np.float32]
    """As the vector search measured them (or the product with the live vectors)."""


class Source:
    """The article suggestions are for, as signals query it.

    Its queries are made only when asked for: lists served from precomputed neighbours need none.
    """

    def __init__(
        self,
        vector: NDArray[np.float32],
        published: float,
        queries: Callable[[], Mapping[str, Any]],
    ) -> None:
        self.vector = vector
        self.published = published
        self._queries = queries

    @cached_property
    def queries(self) -> Mapping[str, Any]:
        """Signal name -> what that signal queries candidates with (`RankingSignal.query`)."""
        return self._queries()


@dataclass(frozen=True, slots=True)
class Reason:
    """One line of why an article is suggested, as the editors' page shows it."""

    text: str
    """What the editor reads ("semantic 0.83")."""
    title: str = ""
    """What it means, shown on hover."""
    own_line: bool = False
    """Shown on a line of its own (a list of words) rather than among the scores."""


class RankingSignal(ABC):
    """One ranking signal. The defaults suit a signal that keeps nothing in a version and reads
    only the articles' vectors and dates; `part` is what `fit` or `load` returned."""

    name: ClassVar[str]
    """Its key in the explanations (`explain`) and in `Side.features`."""
    parameters: ClassVar[Mapping[str, float]]
    """Its entries in the manifest's `ranking` block (its weight among them), with the values
    of a version whose manifest lacks them, or of a build whose settings do not name them."""
    files: ClassVar[tuple[str, ...]] = ()
    """What it stores in a version (checksummed in the manifest like every file)."""
    files_before: ClassVar[tuple[str, ...]] = ()
    """What earlier releases stored in its place, which `load` still reads (a version with
    neither is `absent`)."""
    strategy: ClassVar[str | None] = None
    """Its name as a strategy of its own in `recommender evaluate` (with `alone`), if any."""
    rescales: ClassVar[bool] = False
    """Whether it rescales the sum of the signals registered before it (`rescale`) rather than
    adding a weighted term of its own (`pairs`, `scores`)."""

    @abstractmethod
    def weight(self, weights: FusionWeights) -> float:
        """What one unit of its score adds to the hybrid score."""

    def measure(self, catalog: Catalog, weights: FusionWeights) -> Mapping[str, float]:
        """Parameters measured on the catalog at reindex, recorded in the `ranking` block."""
        return {}

    def fit(self, catalog: Catalog, weights: FusionWeights, fitted: Mapping[str, Any]) -> Any:
        """Its part of a new version; `fitted` holds the parts of the signals registered before."""
        return None

    def update(self, part: Any, change: CatalogChange, updated: Mapping[str, Any]) -> Any:
        """Its part of a new version from the served version's `part`: the rows `change` reuses
        kept as they are, the others computed with the statistics of the last full fit
        (`index.versions.incremental_plan`); `updated` holds the new parts of the signals
        registered before. A signal that stores files must override it (`updatable`)."""
        return None

    def save(self, part: Any, directory: Path) -> None:
        """Write its `files` into a version's staging directory."""
        return None

    def load(self, directory: Path, count: int, loaded: Mapping[str, Any]) -> Any:
        """Its part of a version of `count` articles from the version's directory (memory-mapped
        where it can: every worker of a host loads it); `loaded` holds the parts of the signals
        registered before. Raises OSError or ValueError when the files are unreadable."""
        return None

    def absent(self, count: int, loaded: Mapping[str, Any]) -> Any:
        """Its part of a version written before it was a signal (none of its files): one that
        scores nothing, so the version serves as it was built. A signal without files is never
        absent: its `parameters` decide what it weighs in versions that do not name them."""
        return None

    def rows(self, part: Any) -> Any:
        """What it keeps of the version's own articles, by row (`Side.features`)."""
        return None

    def prepare(self, part: Any, text: str) -> Any:
        """What it keeps of one article from outside the version (a live article, a draft),
        from its lexical text."""
        return None

    def stack(self, part: Any, prepared: Sequence[Any]) -> Any:
        """What it keeps of several prepared articles, by row (the live articles' side)."""
        return None

    def query(self, part: Any, features: Any, row: int) -> Any:
        """What a source at `row` of a side whose features are `features` queries with."""
        return None

    def pairs(
        self,
        part: Any,
        side: Side,
        sources: NDArray[np.int64],
        candidates: Candidates,
        weights: FusionWeights,
    ) -> NDArray[np.floating[Any]]:
        """Its scores of a block of pairs within one version at reindex: `sources` (n,) are
        rows of `side`, and so are `candidates.rows` (n, width). By default none: a signal that
        only rescales, or scores only when lists are served."""
        return np.zeros(candidates.rows.shape, dtype=np.float32)

    def scores(
        self, part: Any, source: Source, candidates: Candidates, weights: FusionWeights
    ) -> NDArray[np.floating[Any]]:
        """Its scores of candidates (one dimension) for one source, when serving. By default
        none (a signal that only rescales)."""
        return np.zeros(candidates.rows.shape, dtype=np.float32)

    @abstractmethod
    def explain(
        self,
        part: Any,
        source: tuple[Side, int],
        target: tuple[Side, int],
        weights: FusionWeights,
    ) -> dict[str, Any]:
        """Its entries in why `target` is suggested for `source` (each a side and its row)."""

    def reasons(self, why: Mapping[str, Any]) -> list[Reason]:
        """Its entries of an explanation (`explain`), as the editors' page shows them."""
        return []

    def rescale(
        self,
        part: Any,
        total: NDArray[np.float32],
        candidates: Candidates,
        weights: FusionWeights,
    ) -> NDArray[np.float32]:
        """The hybrid score so far of `candidates` (any shape of `candidates.rows`), rescaled
        (only with `rescales`)."""
        return total

    def alone(self, part: Any, side: Side, sources: NDArray[np.int64]) -> NDArray[np.float32]:
        """Its scores of every row of `side` for each of `sources`, dense (sources, rows): the
        strategy `recommender evaluate` names after it (only with a `strategy`)."""
        raise NotImplementedError(f"{self.name} is no evaluation strategy of its own")


def updatable(signal: RankingSignal) -> bool:
    """Whether an incremental reindex can carry the signal's part over: it stores nothing, or
    it implements `update`."""
    return not signal.files or type(signal).update is not RankingSignal.update


def fuse(terms: Sequence[tuple[float, NDArray[np.floating[Any]]]]) -> NDArray[np.float32]:
    """The hybrid score: the sum of weight x score over the signals, in the registry's order
    (which fixes how the floating-point sum rounds, so it is part of what a version means)."""
    total: NDArray[np.floating[Any]] | None = None
    for weight, scores in terms:
        term = weight * scores
        total = term if total is None else total + term
    assert total is not None, "no ranking signal is registered"
    return total.astype(np.float32)
