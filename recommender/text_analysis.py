"""Text analysis shared by the served TF-IDF signal and the More-Like-This/BM25 baseline:
Lucene `StandardAnalyzer`-like word tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

# fmt: off
#: Lucene's classic English stop set (`EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`).
ENGLISH_STOP_WORDS: frozenset[str] = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with",
})
# fmt: on

# Letters/digits/underscore runs; an apostrophe or period joins two runs ("don't", "u.s",
# "3.5") and a comma joins two digits ("1,000"), as Unicode word-break rules (UAX #29) do.
_TOKEN = re.compile(r"\w+(?:(?:[.'\u2019]|(?<=\d),(?=\d))\w+)*")


@dataclass(frozen=True, slots=True)
class Analyzer:
    """Lucene `StandardAnalyzer`-like analysis: word tokens, lowercased, optional stop words.

    Unlike Lucene, a token over 255 characters is kept whole rather than cut into pieces.
    """

    stop_words: frozenset[str] = frozenset()

    def tokens(self, text: str) -> list[str]:
        """The terms of `text`, in order, repeats kept."""
        tokens: list[str] = _TOKEN.findall(text.lower())
        if self.stop_words:
            stop = self.stop_words
            return [token for token in tokens if token not in stop]
        return tokens


#: Elasticsearch's default `standard` analyzer (no stop words).
STANDARD = Analyzer()
#: The same with Lucene's classic English stop words removed.
ENGLISH = Analyzer(ENGLISH_STOP_WORDS)
