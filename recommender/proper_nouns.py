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

# What ends a sentence or opens a quote: a capitalised word right after it (or after it and one
# space) opens a sentence. Two fixed-width look-behinds keep the whole scan in the regex engine.
_END = "[.!?:\"'\u201c\u201d\u2018\u2019(\\[\n]"
_JOINED = r"(?:(?:[.'\u2019]|(?<=\d),(?=\d))\w+)*"  # "u.s", "o'brien", "1,000", as TF-IDF cuts them
_CAPITALISED = re.compile(rf"(?<![\w.'\u2019])(?<!{_END})(?<!{_END}\s)([^\W\d_]\w*{_JOINED})")
_NUMBER = re.compile(rf"(?<![\w.'\u2019,])(\d\w*{_JOINED})")


def proper_noun_counts(text: str) -> Counter[str]:
    """How often each proper noun or number of `text` occurs, lowercased."""
    text = "\n" + text  # the first word opens a sentence
    found = Counter(
        word.lower()
        for word in _CAPITALISED.findall(text)
        if word[0].isupper() and word.lower() not in STOP_WORDS
    )
    found.update(number.lower() for number in _NUMBER.findall(text) if len(number) >= 2)
    return found
