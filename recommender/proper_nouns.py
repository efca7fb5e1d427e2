"""A proper-noun heuristic: the words that tell two reports of look-alike events apart (names,
places, organisations, numbers), without a tagger.

A term is a capitalised word that does not open a sentence (or a line, or follow a quote), or a
number of two or more characters; terms are lowercased, English stop words dropped, so "The" and
"In" at a sentence start never count while "Valparaiso" and "2019" do.
"""

from __future__ import annotations

import re
from collections import Counter

from recommender.text_analysis import STOP_WORDS

# Word tokens as the TF-IDF analyzer cuts them ("u.s", "o'brien", "1,000").
_WORD = re.compile(r"\w+(?:(?:[.'\u2019]|(?<=\d),(?=\d))\w+)*")
_SENTENCE_END = re.compile(r"[.!?:\"'\u201c\u201d\u2018\u2019(\[\n]\s*$")


def proper_noun_counts(text: str) -> Counter[str]:
    """How often each proper noun or number of `text` occurs, lowercased."""
    found: Counter[str] = Counter()
    previous_end = 0
    for match in _WORD.finditer(text):
        word = match.group()
        gap = text[previous_end : match.start()]
        previous_end = match.end()
        if word[0].isdigit():
            if len(word) >= 2:
                found[word.lower()] += 1
            continue
        if not word[0].isupper() or word.lower() in STOP_WORDS:
            continue
        opens_sentence = match.start() == 0 or bool(_SENTENCE_END.search(gap or "\n"))
        if not opens_sentence:
            found[word.lower()] += 1
    return found
