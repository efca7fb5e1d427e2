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

#: Common English function words, which carry no topic.
STOP_WORDS: frozenset[str] = frozenset(
    """
    a about above after again against all almost also although always am among an and
    another any anyone anything are around as at be became because become been before
    being below between both but by can cannot could did do does doing done down during
    each either else enough even ever every few for from further get gets got had has
    have having he her here hers herself him himself his how however i if in into is it
    its itself just least less like made make many may me might more most much must my
    myself neither never no nor not now of off often on once one only or other others
    our ours ourselves out over own per perhaps rather said same say says she should
    since so some still such than that the their theirs them themselves then there these
    they this those though through thus to too under until up upon us very was we well
    were what when where whether which while who whom whose why will with within without
    would yet you your yours yourself yourselves s t
    """.split()  # noqa: SIM905 - a word list reads better as text
)

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
