"""The TF-IDF cosine ("lexical"): the words two articles share, rare ones weighing more (names,
places and numbers that an embedding model blurs). The model and its math are
`recommender.tfidf`; a version keeps the vocabulary and every article's row."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, ClassVar, overload

import numpy as np
import orjson
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.mapped_files import (
    KeyIndex,
    LineTable,
    csr_files,
    key_hashes,
    map_array,
    map_bytes,
    save_csr,
)
from recommender.ranking import FusionWeights
from recommender.signals.base import (
    Candidates,
    Catalog,
    CatalogChange,
    RankingSignal,
    Reason,
    Side,
    Source,
)
from recommender.tfidf import (
    FILLER_WORDS,
    TfidfModel,
    analyse,
    load_matrix,
    merge_rows,
    new_terms,
    pair_similarities,
    query_similarities,
    smoothed_idf,
    stack_rows,
)

LEXICAL = "lexical"
"""float32 CSR (count, terms): the TF-IDF rows of the articles, as `csr_files(LEXICAL)`
(`lexical.npz` in versions written before they were memory-mapped)."""
TERMS = "vocabulary.jsonl"
"""The terms, by column: one JSON string a line."""
TERM_OFFSETS = "vocabulary.offsets.npy"
TERM_HASHES = "vocabulary.hashes.npy"
TERM_COLUMNS = "vocabulary.columns.npy"
"""The terms' 64-bit hashes, sorted, and the column of each (term -> column without a dict)."""
IDF = "vocabulary.idf.npy"
TFIDF_MODEL = "tfidf.json"
"""The rest of the model (its name boost)."""
VOCABULARY_FILES = (TERMS, TERM_OFFSETS, TERM_HASHES, TERM_COLUMNS, IDF, TFIDF_MODEL)
"""The vocabulary and idf weights (to weigh drafts and new articles), memory-mapped."""
VOCABULARY_BEFORE = "vocabulary.json"
"""The vocabulary of versions written before it was memory-mapped: terms, idf and name boost."""
#: Shared terms an explanation names.
SHARED_TERMS = 5


class _Terms(Sequence[str]):
    """Column -> term, each decoded when asked for."""

    def __init__(self, lines: LineTable) -> None:
        self._lines = lines

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, column: int) -> str: ...
    @overload
    def __getitem__(self, column: slice) -> list[str]: ...
    def __getitem__(self, column: int | slice) -> str | list[str]:
        if isinstance(column, slice):
            return [self[i] for i in range(*column.indices(len(self)))]
        if not 0 <= column < len(self):
            raise IndexError(f"term {column} of {len(self)}")
        term: str = orjson.loads(self._lines.line(column))
        return term


class MappedVocabulary(Mapping[str, int]):
    """Term -> column over a version's memory-mapped vocabulary files: every worker of a host
    shares them, whatever the vocabulary's size."""

    def __init__(self, terms: Sequence[str], index: KeyIndex, directory: Path) -> None:
        self.terms = terms
        self.index = index
        self.directory = directory
        """Where its files are (an extended vocabulary copies them: `save_vocabulary`)."""

    def __getitem__(self, term: str) -> int:
        for column in self.index.candidates(term):
            if self.terms[column] == term:
                return column
        raise KeyError(term)

    def __iter__(self) -> Iterator[str]:
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)


class ExtendedVocabulary(Mapping[str, int]):
    """A version's mapped vocabulary with the terms an incremental reindex met appended."""

    def __init__(self, base: MappedVocabulary, added: Sequence[str]) -> None:
        self.base = base
        self.added = list(added)
        self._added = {term: len(base) + at for at, term in enumerate(self.added)}

    def __getitem__(self, term: str) -> int:
        column = self._added.get(term)
        return self.base[term] if column is None else column

    def __iter__(self) -> Iterator[str]:
        yield from self.base
        yield from self.added

    def __len__(self) -> int:
        return len(self.base) + len(self.added)


def _save_extended(vocabulary: ExtendedVocabulary, directory: Path) -> None:
    """Write the terms, offsets and hashes of an extended vocabulary: the base's files copied
    with the added terms appended, so that the cost grows with the terms added."""
    base = vocabulary.base.directory
    lines = [orjson.dumps(term) + b"\n" for term in vocabulary.added]
    shutil.copyfile(base / TERMS, directory / TERMS)
    with (directory / TERMS).open("ab") as handle:
        handle.writelines(lines)
    offsets = np.load(base / TERM_OFFSETS, allow_pickle=False)
    lengths = np.fromiter(map(len, lines), np.int64, len(lines))
    np.save(
        directory / TERM_OFFSETS,
        np.concatenate([offsets, offsets[-1] + np.cumsum(lengths)]),
        allow_pickle=False,
    )
    served = vocabulary.base.index
    by_column = np.empty(len(served.hashes), dtype=np.uint64)
    by_column[served.rows] = served.hashes
    index = KeyIndex.build(np.concatenate([by_column, key_hashes(vocabulary.added)]))
    np.save(directory / TERM_HASHES, index.hashes, allow_pickle=False)
    np.save(directory / TERM_COLUMNS, index.rows, allow_pickle=False)


def save_vocabulary(model: TfidfModel, directory: Path) -> None:
    """Write `VOCABULARY_FILES`."""
    vocabulary = model.vocabulary
    np.save(directory / IDF, np.asarray(model.idf, dtype=np.float32), allow_pickle=False)
    (directory / TFIDF_MODEL).write_bytes(orjson.dumps({"name_boost": model.name_boost}))
    if isinstance(vocabulary, ExtendedVocabulary):
        _save_extended(vocabulary, directory)
        return
    terms = sorted(vocabulary, key=vocabulary.__getitem__)
    lengths = np.zeros(len(terms) + 1, dtype=np.int64)
    with (directory / TERMS).open("wb") as handle:
        for column, term in enumerate(terms):
            lengths[column + 1] = handle.write(orjson.dumps(term) + b"\n")
    index = KeyIndex.build(key_hashes(terms))
    np.save(directory / TERM_OFFSETS, np.cumsum(lengths), allow_pickle=False)
    np.save(directory / TERM_HASHES, index.hashes, allow_pickle=False)
    np.save(directory / TERM_COLUMNS, index.rows, allow_pickle=False)


def load_vocabulary(directory: Path) -> TfidfModel:
    """The model `save_vocabulary` wrote, memory-mapped; or the `vocabulary.json` of a version
    written before, read into memory."""
    if not (directory / TERMS).is_file():
        return TfidfModel.load(directory / VOCABULARY_BEFORE)
    lines = LineTable(map_bytes(directory / TERMS), map_array(directory / TERM_OFFSETS))
    index = KeyIndex(map_array(directory / TERM_HASHES), map_array(directory / TERM_COLUMNS))
    name_boost = orjson.loads((directory / TFIDF_MODEL).read_bytes())["name_boost"]
    return TfidfModel(
        MappedVocabulary(_Terms(lines), index, directory), map_array(directory / IDF), name_boost
    )


@dataclass(frozen=True)
class TfidfPart:
    """The TF-IDF of one version."""

    model: TfidfModel
    matrix: sp.csr_matrix
    frequencies: sp.csr_matrix | None = None
    """The raw term counts over the vocabulary of the rows just weighed (what BM25 weighs):
    every article's when fitted, the new and changed ones' when updated."""

    @cached_property
    def terms(self) -> Sequence[str]:
        """Column number -> term."""
        vocabulary = self.model.vocabulary
        if isinstance(vocabulary, MappedVocabulary):
            return vocabulary.terms
        terms = [""] * len(vocabulary)
        for term, column in vocabulary.items():
            terms[column] = term
        return terms

    @cached_property
    def text_rows(self) -> Callable[[str], tuple[sp.csr_matrix, sp.csr_matrix]]:
        """text -> the TF-IDF row and raw term counts of a text outside the version (the
        caller must not change them)."""

        # Remembered: the TF-IDF and BM25 signals both prepare a draft or live article from
        # them, one after the other, and analysing a text costs more than the rest of a draft.
        @lru_cache(maxsize=8)
        def rows(text: str) -> tuple[sp.csr_matrix, sp.csr_matrix]:
            return self.model.transform_terms([analyse(text, bool(self.model.name_boost))])

        return rows


class TfidfCosine(RankingSignal):
    name = "lexical"
    parameters: ClassVar[Mapping[str, float]] = {
        "lexical": 1.0,
        "name_boost": 0.0,
        # name_boost: a proper noun or number weighs 1 + name_boost times as much (fixed when
        # the version's TF-IDF is fitted; the analysis seeks names only when it is set).
    }
    files = (*csr_files(LEXICAL), *VOCABULARY_FILES)
    files_before = (f"{LEXICAL}.npz", VOCABULARY_BEFORE)
    strategy = "tfidf"

    def weight(self, weights: FusionWeights) -> float:
        return weights["lexical"]

    def fit(self, catalog: Catalog, weights: FusionWeights, fitted: Mapping[str, Any]) -> TfidfPart:
        model, matrix, frequencies = TfidfModel.fit_catalog(
            catalog.terms, weights["name_boost"], catalog.block
        )
        return TfidfPart(model, matrix, frequencies)

    def update(
        self, part: TfidfPart, change: CatalogChange, updated: Mapping[str, Any]
    ) -> TfidfPart:
        """The served rows reused; the others weighed with the idf of the last full fit. Terms
        the vocabulary lacks are appended, with the idf their document frequency in the new
        rows gives over the whole catalog (a new name must still count)."""
        served = part.model
        if not isinstance(served.vocabulary, MappedVocabulary):
            raise ValueError("only a memory-mapped vocabulary is extended")
        added, columns = new_terms(served.vocabulary, change.terms)
        width = len(served.vocabulary) + len(added)
        frequency = np.bincount(change.terms.columns, minlength=len(change.terms.vocabulary))
        added_idf = np.zeros(len(added), dtype=np.float32)
        is_added = columns >= len(served.vocabulary)
        added_idf[columns[is_added] - len(served.vocabulary)] = smoothed_idf(
            len(change.reused), frequency[is_added]
        )
        model = TfidfModel(
            ExtendedVocabulary(served.vocabulary, added),
            np.concatenate([served.idf, added_idf]),
            served.name_boost,
        )
        fresh, frequencies = model.weigh(change.terms, columns, change.block)
        return TfidfPart(model, merge_rows(part.matrix, change.reused, fresh, width), frequencies)

    def save(self, part: TfidfPart, directory: Path) -> None:
        save_csr(part.matrix, directory, LEXICAL)
        save_vocabulary(part.model, directory)

    def load(self, directory: Path, count: int, loaded: Mapping[str, Any]) -> TfidfPart:
        model, matrix = load_vocabulary(directory), load_matrix(directory, LEXICAL)
        if matrix.shape != (count, len(model.vocabulary)) or len(model.idf) != matrix.shape[1]:
            raise ValueError(f"the TF-IDF is {matrix.shape}, not {count} rows of its vocabulary")
        return TfidfPart(model, matrix)

    def absent(self, count: int, loaded: Mapping[str, Any]) -> TfidfPart:
        raise ValueError("the TF-IDF's files are not in the manifest")

    def rows(self, part: TfidfPart) -> sp.csr_matrix:
        return part.matrix

    def prepare(self, part: TfidfPart, text: str) -> sp.csr_matrix:
        return part.text_rows(text)[0]

    def stack(self, part: TfidfPart, prepared: Sequence[sp.csr_matrix]) -> sp.csr_matrix:
        return stack_rows(list(prepared), part.matrix.shape[1])

    def query(self, part: TfidfPart, features: sp.csr_matrix, row: int) -> sp.csr_matrix:
        return features[row]

    def pairs(
        self,
        part: TfidfPart,
        side: Side,
        sources: NDArray[np.int64],
        candidates: Candidates,
        weights: FusionWeights,
    ) -> NDArray[np.float32]:
        return pair_similarities(side.features[self.name], sources, candidates.rows)

    def scores(
        self, part: TfidfPart, source: Source, candidates: Candidates, weights: FusionWeights
    ) -> NDArray[np.float32]:
        matrix = candidates.side.features[self.name]
        return query_similarities(matrix, source.queries[self.name], candidates.rows)

    def explain(
        self,
        part: TfidfPart,
        source: tuple[Side, int],
        target: tuple[Side, int],
        weights: FusionWeights,
    ) -> dict[str, Any]:
        """The cosine, and the shared terms that weigh most in it (filler words left out)."""
        (source_side, source_row), (target_side, target_row) = source, target
        source_terms = source_side.features[self.name][source_row]
        shared = source_terms.multiply(target_side.features[self.name][target_row]).tocoo()
        strongest = [
            part.terms[int(shared.col[i])] for i in np.argsort(-shared.data, kind="stable")
        ]
        return {
            "lexical": round(float(shared.data.sum()), 4),
            "shared_terms": [term for term in strongest if term not in FILLER_WORDS][:SHARED_TERMS],
        }

    def reasons(self, why: Mapping[str, Any]) -> list[Reason]:
        shared = [
            Reason(
                f"shared terms {why['lexical']:.2f}",
                "Shared terms: the TF-IDF weight of the words both stories use (rare words weigh "
                "more)",
            )
        ]
        if why["shared_terms"]:
            shared.append(Reason(", ".join(why["shared_terms"]), own_line=True))
        return shared

    def alone(self, part: TfidfPart, side: Side, sources: NDArray[np.int64]) -> NDArray[np.float32]:
        """Plain cosine of the served TF-IDF vectors over the whole catalog."""
        matrix = side.features[self.name]
        dense: NDArray[np.float32] = (matrix[sources] @ matrix.T).toarray()
        return dense
