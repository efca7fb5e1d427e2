"""Pure ranking steps over candidate rows: filters, near-duplicate collapse, selection.

Every function takes plain arrays and returns new ones, so the serving path, the evaluation and
the tests run exactly the same code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

SECONDS_PER_DAY = 86_400.0

#: Cosine above which two articles count as the same text (wire copies, re-published updates).
NEAR_DUPLICATE = 0.98


class FusionWeights(Mapping[str, float]):
    """The parameters of the hybrid score, by name: each ranking signal's weight and settings
    (`recommender.signals`), as each index version's manifest records them (its `ranking`
    block). Built from the flat settings (`RECOMMENDER_LEXICAL_WEIGHT`, ...) or a manifest;
    what either leaves out, the signals' own `parameters` fill in."""

    __slots__ = ("_values",)

    def __init__(self, **values: float) -> None:
        # Plain floats: a NumPy scalar would widen float32 scores it multiplies.
        self._values = {name: float(value) for name, value in values.items()}

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(frozenset(self._values.items()))

    def __repr__(self) -> str:
        return f"FusionWeights({self._values!r})"


@dataclass(frozen=True, slots=True)
class ServingPolicy:
    """Ranking applied when a list is served (on top of the precomputed hybrid scores)."""

    diversity: float = 0.0
    """Maximal-marginal-relevance weight: 0 ranks by score alone."""
    near_duplicate: float = NEAR_DUPLICATE
    freshness_half_life_days: float | None = None
    """Age at which the freshness penalty reaches half its weight; None turns it off."""
    freshness_weight: float = 0.2
    section_half_life_days: Mapping[str, float] = field(default_factory=dict)
    """Per-section half-lives (e.g. breaking news decays faster than features)."""


@dataclass(frozen=True, slots=True)
class RelatedQuery:
    """What a caller asks for; `cache_key` is its normalised form."""

    limit: int = 5
    sections: frozenset[str] = field(default_factory=frozenset)
    exclude: frozenset[str] = field(default_factory=frozenset)
    max_age_days: float | None = None
    language: str | None = None

    def cache_key(self) -> str:
        """Equal for equal queries, and unambiguous (a section may hold any character)."""
        parts = [
            self.limit,
            sorted(self.sections),
            sorted(self.exclude),
            self.max_age_days,
            self.language,
        ]
        return json.dumps(parts, separators=(",", ":"))


ScalarT = TypeVar("ScalarT", bound=np.generic)


class AppendedRows(Generic[ScalarT]):
    """The rows of `head` followed by those of `tail`, indexed as one array without copying
    `head` (a version's memory-mapped column, then the few live articles over it)."""

    def __init__(self, head: NDArray[ScalarT], tail: NDArray[ScalarT]) -> None:
        self._head = head
        self._tail = tail
        self._offset = len(head)

    def __len__(self) -> int:
        return self._offset + len(self._tail)

    @overload
    def __getitem__(self, rows: int, /) -> Any: ...
    @overload
    def __getitem__(self, rows: NDArray[np.int64], /) -> NDArray[ScalarT]: ...
    def __getitem__(self, rows: int | NDArray[np.int64], /) -> Any:
        if isinstance(rows, int | np.integer):
            return self._head[rows] if rows < self._offset else self._tail[rows - self._offset]
        if not len(self._tail) or (len(rows) and rows.max() < self._offset):
            return np.asarray(self._head[rows])
        out = np.empty((len(rows), *self._head.shape[1:]), dtype=self._head.dtype)
        old = rows < self._offset
        out[old] = self._head[rows[old]]
        out[~old] = self._tail[rows[~old] - self._offset]
        return out


#: A column by row: an array, or a version's column with live articles appended.
Column = NDArray[ScalarT] | AppendedRows[ScalarT]


@dataclass(frozen=True)
class LabelColumn:
    """A label of each row (its section, its language) as a small integer code into `labels`,
    so that filtering a million rows needs no Python object per row. Code 0 is "no label"."""

    codes: Column[np.int32]
    labels: Sequence[str | None]
    """Code -> label; `labels[0]` is None."""

    @classmethod
    def of(cls, values: Iterable[str | None]) -> LabelColumn:
        """The column of these labels, by row."""
        code_of: dict[str | None, int] = {None: 0}
        codes = [code_of.setdefault(value, len(code_of)) for value in values]
        return cls(np.array(codes, dtype=np.int32), list(code_of))

    @cached_property
    def code_of(self) -> Mapping[str, int]:
        """Label -> code."""
        return {label: code for code, label in enumerate(self.labels) if label is not None}

    def matching(self, rows: NDArray[np.int64], wanted: Collection[str]) -> NDArray[np.bool_]:
        """Which of `rows` carry one of the `wanted` labels."""
        codes = [self.code_of[label] for label in wanted if label in self.code_of]
        return np.isin(self.codes[rows], codes)

    def per_code(self, value: Callable[[str | None], float]) -> NDArray[np.float64]:
        """`value` of each label, by code (index it with `codes[rows]`)."""
        return np.array([value(label) for label in self.labels], dtype=np.float64)

    def appended(self, values: Sequence[str | None]) -> LabelColumn:
        """This column followed by rows labelled `values` (labels it lacks are added)."""
        code_of: dict[str | None, int] = {None: 0}
        code_of.update(self.code_of)
        codes = [code_of.setdefault(value, len(code_of)) for value in values]
        labels = [*self.labels, *list(code_of)[len(self.labels) :]]
        assert isinstance(self.codes, np.ndarray), "a column is appended to once"
        return LabelColumn(AppendedRows(self.codes, np.array(codes, np.int32)), labels)


@dataclass(frozen=True, slots=True)
class CandidateFacts:
    """Per-row facts the filters need, aligned with the catalog's rows."""

    sections: LabelColumn
    languages: LabelColumn
    published: Column[np.float64]
    """Epoch seconds, NaN when unknown."""


def eligible(
    rows: NDArray[np.int64],
    facts: CandidateFacts,
    query: RelatedQuery,
    *,
    excluded_rows: frozenset[int],
    now: float,
) -> NDArray[np.bool_]:
    """Which candidate rows pass the query's filters and the embargo rule.

    An article published in the future (embargoed) is never suggested before its time; with
    `max_age_days`, articles of unknown date are left out.
    """
    keep = rows >= 0
    if len(excluded_rows) <= 8:  # the usual case: the source alone; isin costs more
        for row in excluded_rows:
            keep &= rows != row
    else:
        keep &= ~np.isin(rows, np.fromiter(excluded_rows, dtype=np.int64))
    safe_rows = np.where(keep, rows, 0)
    published = facts.published[safe_rows]
    keep &= ~(published > now)
    if query.max_age_days is not None:
        keep &= published >= now - query.max_age_days * SECONDS_PER_DAY
    if query.sections:
        keep &= facts.sections.matching(safe_rows, query.sections)
    if query.language:
        keep &= facts.languages.matching(safe_rows, (query.language,))
    return keep


def freshness_penalty(
    published: NDArray[np.float64],
    half_lives: NDArray[np.float64],
    now: float,
    weight: float,
) -> NDArray[np.float32]:
    """Score to subtract for age: 0 when new, `weight` / 2 after one half-life, up to `weight`.

    Articles of unknown date and candidates with no half-life (NaN) are not penalised.
    """
    age_days = np.clip((now - published) / SECONDS_PER_DAY, 0.0, None)
    penalty = weight * (1.0 - np.power(0.5, age_days / half_lives))
    return np.nan_to_num(penalty, nan=0.0).astype(np.float32)


class RowVectors(Protocol):
    """Anything that returns the vectors of catalog rows (an array does)."""

    def __getitem__(self, rows: NDArray[np.int64], /) -> NDArray[np.float32]: ...


def select(
    rows: NDArray[np.int64],
    scores: NDArray[np.float32],
    vectors: NDArray[np.float32] | RowVectors,
    source: NDArray[np.float32] | None,
    limit: int,
    *,
    diversity: float = 0.0,
    near_duplicate: float = NEAR_DUPLICATE,
) -> list[tuple[int, float]]:
    """Greedy picks by maximal marginal relevance, skipping near-duplicates.

    Each pick maximises `score - diversity x (highest cosine to an earlier pick)`; a candidate
    that is a near-copy of the source or of an earlier pick is never taken. Returns
    (row, score) pairs with the candidates' own scores.
    """
    if len(rows) == 0 or limit < 1:
        return []
    if diversity == 0:
        return _select_by_score(rows, scores, vectors, source, limit, near_duplicate)
    candidates = np.asarray(vectors[rows], dtype=np.float32)
    open_ = np.ones(len(rows), dtype=bool)
    if source is not None:
        open_ &= candidates @ source < near_duplicate
    closest = np.zeros(len(rows), dtype=np.float32)
    chosen: list[tuple[int, float]] = []
    while len(chosen) < limit and open_.any():
        adjusted = np.where(open_, scores - diversity * closest, -np.inf)
        best = int(np.argmax(adjusted))
        chosen.append((int(rows[best]), float(scores[best])))
        similarity = candidates @ candidates[best]
        open_ &= similarity < near_duplicate
        open_[best] = False
        np.maximum(closest, similarity, out=closest)
    return chosen


def _select_by_score(
    rows: NDArray[np.int64],
    scores: NDArray[np.float32],
    vectors: NDArray[np.float32] | RowVectors,
    source: NDArray[np.float32] | None,
    limit: int,
    near_duplicate: float,
) -> list[tuple[int, float]]:
    """`select` without diversity: walk candidates best first, a block at a time (most lists
    fill from the first block), with the block's similarities computed in one go."""
    order = np.argsort(-scores, kind="stable")
    chosen: list[tuple[int, float]] = []
    picked: list[NDArray[np.float32]] = []
    step = max(8, 2 * limit)
    for start in range(0, len(order), step):
        block_order = order[start : start + step]
        block = np.asarray(vectors[rows[block_order]], dtype=np.float32)
        to_source = (block @ source).tolist() if source is not None else None
        to_earlier = (block @ np.stack(picked).T).tolist() if picked else None
        within = (block @ block.T).tolist()
        taken: list[int] = []
        for j, position in enumerate(block_order.tolist()):
            if to_source is not None and to_source[j] >= near_duplicate:
                continue
            if to_earlier is not None and max(to_earlier[j]) >= near_duplicate:
                continue
            if any(within[j][k] >= near_duplicate for k in taken):
                continue
            taken.append(j)
            chosen.append((int(rows[position]), float(scores[position])))
            if len(chosen) == limit:
                return chosen
        picked.extend(block[k] for k in taken)
    return chosen
