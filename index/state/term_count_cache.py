"""A durable cache of texts' TF-IDF analyses (`recommender.tfidf.TextTerms`) keyed by (analysis,
hash of the analysed text), beside the embedding cache: a reindex tokenises only new texts.

Stored as the embedding cache is (`index.state.hashed_blobs`): a batch is committed whole or not
at all, so an entry is never read half-written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import orjson

from index.state.hashed_blobs import HashedBlobs, PruneResult
from recommender.tfidf import ANALYSIS_ID, TextTerms


def _scope(names: bool) -> str:
    # An analysis without its names cannot serve a boosted catalog, so each kind is kept apart.
    return f"{ANALYSIS_ID}+names" if names else ANALYSIS_ID


class TermCountCache:
    """Analyses by (kind of analysis, text hash). Not shared across threads."""

    def __init__(self, path: Path) -> None:
        self._blobs = HashedBlobs(path, "the term-count cache", "term_counts", "analysis", "terms")

    def get_many(self, names: bool, hashes: Sequence[str]) -> dict[str, TextTerms]:
        """The stored analyses among `hashes`, made with (or without) `names`."""
        return {
            text_hash: TextTerms(*orjson.loads(blob))
            for text_hash, blob in self._blobs.get_many(_scope(names), hashes).items()
        }

    def known(self, names: bool, hashes: Sequence[str]) -> set[str]:
        """Those of `hashes` that have an analysis made with (or without) `names`."""
        return self._blobs.known(_scope(names), hashes)

    def put_many(self, names: bool, items: Iterable[tuple[str, TextTerms]]) -> None:
        """Store analyses made with (or without) `names` and commit them, all or none.

        Raises StorageError when the write fails (a full disk); earlier batches stay stored.
        """
        self._blobs.put_many(
            _scope(names),
            (
                (text_hash, orjson.dumps([terms.terms, terms.counts, terms.names]))
                for text_hash, terms in items
            ),
        )

    def prune(self, keep: Mapping[bool, set[str]], *, dry_run: bool = False) -> PruneResult:
        """Keep only the analyses of `keep` (with names or not -> text hashes)."""
        return self._blobs.prune(
            {_scope(names): hashes for names, hashes in keep.items()}, dry_run=dry_run
        )

    def close(self) -> None:
        self._blobs.close()
