"""The proper-noun heuristic: names, places, organisations and numbers, not sentence openers."""

from __future__ import annotations

from recommender.proper_nouns import proper_noun_counts


def test_capitalised_words_inside_sentences_and_numbers_count() -> None:
    text = (
        "The quake struck Valparaiso on Monday. In Chile, 2019 saw 1,000 homes lost, "
        'Acme Corp said. "Nobody" expected it; Valparaiso mourns.\nRescuers from Osaka came.'
    )
    assert proper_noun_counts(text) == {
        "valparaiso": 2,
        "monday": 1,
        "chile": 1,
        "2019": 1,
        "1,000": 1,
        "acme": 1,
        "corp": 1,
        "osaka": 1,
    }


def test_sentence_openers_stop_words_and_lowercase_words_do_not() -> None:
    assert proper_noun_counts("Rescuers came. They left! Why? Because: Floods") == {}
    assert proper_noun_counts("and The ministry said It was 7 days") == {}


def test_abbreviations_stay_one_term() -> None:
    assert proper_noun_counts("troops of the U.S. and O'Brien") == {"u.s": 1, "o'brien": 1}
