"""IFBench ``count:*``: how many words, names, numbers or marks a response has.

Each checker reproduces allenai/IFBench ``instructions.py`` (latest revision, with the
fixes listed in ``DISAGREEMENTS.md``). Words are counted the way each reference checker
counts them, which differs from one constraint to the next (see :mod:`.text`).
"""
from __future__ import annotations

import functools
import re

from filters.verify.ifbench.kwargs import integer, nonempty
from filters.verify.ifbench.lexicon import CONJUNCTIONS, PERSON_NAMES, PRONOUNS
from filters.verify.ifbench.text import (
    count_words,
    delete_punctuation,
    strip_punctuation,
    word_tokenize,
)

__all__ = [
    "check_conjunctions",
    "check_keywords_multiple",
    "check_numbers",
    "check_person_names",
    "check_pronouns",
    "check_punctuation",
    "check_unique_word_count",
    "check_word_count_range",
    "check_words_japanese",
]

_NAME_RES = tuple((name, re.compile(rf"\b{name}\b")) for name in PERSON_NAMES)
_DIGITS = re.compile(r"\d+")
# Hiragana, katakana and CJK unified ideographs (kanji).
_JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")
_PUNCTUATION_MARKS = frozenset(".,!?;:")
_KEYWORD_TIMES = (1, 2, 3, 5, 7)


@functools.lru_cache(maxsize=1024)
def _whole_word(keyword: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(keyword)}\b", re.IGNORECASE)


def check_word_count_range(response: str, *, prompt: str = "", min_words: int, max_words: int) -> bool:
    """``count:word_count_range``: ``min_words <= #\\w+ runs <= max_words``.

    >>> check_word_count_range("one two, three", min_words=3, max_words=3)
    True
    """
    return integer(min_words, "min_words") <= count_words(response) <= integer(max_words, "max_words")


def check_unique_word_count(response: str, *, prompt: str = "", N: int) -> bool:
    """``count:unique_word_count``: at least ``N`` distinct lower-cased whitespace chunks,
    punctuation stripped from their ends (an all-punctuation chunk counts as ``""``).

    >>> check_unique_word_count("The cat, the CAT!", N=2)
    True
    """
    return len({strip_punctuation(w) for w in response.lower().split()}) >= integer(N, "N")


def check_conjunctions(response: str, *, prompt: str = "", small_n: int) -> bool:
    """``count:conjunctions``: at least ``small_n`` different coordinating conjunctions.

    Notes
    -----
    As in the reference, "different" compares the chunks as written: ``"and"`` and
    ``"And,"`` are two different conjunctions.

    >>> check_conjunctions("and And, or", small_n=3)
    True
    """
    found = {w for w in response.split() if strip_punctuation(w).lower() in CONJUNCTIONS}
    return len(found) >= integer(small_n, "small_n")


def check_person_names(response: str, *, prompt: str = "", N: int) -> bool:
    """``count:person_names``: at least ``N`` of the 50 listed names, matched as whole
    words, case-sensitive.

    >>> check_person_names("Emma met Liam; emma left.", N=2)
    True
    """
    return sum(1 for _, rx in _NAME_RES if rx.search(response)) >= integer(N, "N")


def check_numbers(response: str, *, prompt: str = "", N: int) -> bool:
    """``count:numbers``: exactly ``N`` digit runs once ASCII punctuation is deleted
    (so ``3.5`` and ``1,000`` are one number each).

    >>> check_numbers("Pay 1,000 in 3.5 days", N=2)
    True
    """
    return len(_DIGITS.findall(delete_punctuation(response))) == integer(N, "N")


def check_punctuation(response: str, *, prompt: str = "") -> bool:
    """``count:punctuation``: an interrobang (``?!``, ``!?`` or ``‽``) plus each of
    ``. , ! ? ; :`` outside the first ``?!`` (or, failing that, ``!?``).

    >>> check_punctuation("Wait?! Yes: a, b; c. Why? Now!")
    True
    >>> check_punctuation("Wait?! Yes: a, b; c.")
    False
    """
    if not ("!?" in response or "?!" in response or "‽" in response):
        return False
    rest = response.replace("?!", "", 1)
    if len(rest) == len(response):
        rest = response.replace("!?", "", 1)
    return _PUNCTUATION_MARKS <= set(rest)


def check_keywords_multiple(
    response: str,
    *,
    prompt: str = "",
    keyword1: str,
    keyword2: str,
    keyword3: str,
    keyword4: str,
    keyword5: str,
) -> bool:
    """``count:keywords_multiple``: keyword1..5 occur exactly 1, 2, 3, 5 and 7 times as
    whole words, case-insensitive (keywords are stripped).

    >>> check_keywords_multiple("a b b c c c d d d d d e e e e e e e",
    ...     keyword1="a", keyword2="b", keyword3="c", keyword4="d", keyword5="e")
    True
    """
    keywords = (keyword1, keyword2, keyword3, keyword4, keyword5)
    for i, (keyword, times) in enumerate(zip(keywords, _KEYWORD_TIMES), start=1):
        nonempty(keyword, f"keyword{i}")
        if len(_whole_word(keyword.strip()).findall(response)) != times:
            return False
    return True


def check_pronouns(response: str, *, prompt: str = "", N: int) -> bool:
    """``count:pronouns``: at least ``N`` pronoun tokens (NLTK tokens of the lower-cased
    response, ``/`` read as a space so ``she/her`` counts twice).

    >>> check_pronouns("She told me that they/them works.", N=5)
    True
    """
    tokens = word_tokenize(response.replace("/", " ").lower())
    return sum(1 for t in tokens if t in PRONOUNS) >= integer(N, "N")


def check_words_japanese(response: str, *, prompt: str = "", N: int) -> bool:
    """``count:words_japanese``: every ``N``-th whitespace chunk contains a Japanese
    character, unless it is empty after stripping punctuation or all digits.

    >>> check_words_japanese("I like sushi and 猫", N=3)
    False
    >>> check_words_japanese("I like 寿司 and so 猫", N=3)
    True
    """
    n = integer(N, "N", minimum=1)
    for i, chunk in enumerate(response.split(), start=1):
        word = strip_punctuation(chunk)
        if i % n == 0 and word and not word.isdigit() and not _JAPANESE.search(word):
            return False
    return True
