"""IFEval ``change_case:*``: capital words, all-caps English, all-lowercase English.

"Capital word" means an ``nltk.word_tokenize`` token with ``str.isupper()`` (so "I",
"USA." and "N'T" count, "42" does not); see :mod:`filters.verify.ifeval.tokens`.
"""
from __future__ import annotations

from filters.verify.ifeval.kwargs import compare, count
from filters.verify.ifeval.language import detect_language
from filters.verify.ifeval.tokens import word_tokenize

__all__ = ["check_capital_word_frequency", "check_english_capital", "check_english_lowercase"]


def check_capital_word_frequency(response: str, *, prompt: str = "", capital_frequency: int, capital_relation: str) -> bool:
    """``change_case:capital_word_frequency``: all-caps tokens vs threshold.

    >>> check_capital_word_frequency("I LOVE NY.", capital_frequency=3, capital_relation="at least")
    True
    """
    threshold = count(capital_frequency, "capital_frequency", minimum=None)
    n = sum(1 for token in word_tokenize(response) if token.isupper())
    return compare(n, threshold, capital_relation, "capital_relation")


def check_english_capital(response: str, *, prompt: str = "") -> bool:
    """``change_case:english_capital``: ``str.isupper()`` and langdetect says English
    (undetectable text counts as English, as in the reference).

    >>> check_english_capital("Hello")
    False
    """
    if not response.isupper():
        return False
    detected = detect_language(response)
    return detected is None or detected == "en"


def check_english_lowercase(response: str, *, prompt: str = "") -> bool:
    """``change_case:english_lowercase``: ``str.islower()`` and langdetect says English.

    >>> check_english_lowercase("Hello")
    False
    """
    if not response.islower():
        return False
    detected = detect_language(response)
    return detected is None or detected == "en"
