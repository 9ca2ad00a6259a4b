"""IFEval ``keywords:*`` and ``punctuation:no_comma``: what words or characters occur.

Keywords are regexes matched case-insensitively, as in the reference
(``re.search(keyword, text, re.IGNORECASE)``), so ``"a.b"`` matches ``"axb"``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from filters.verify.ifeval.kwargs import compare, count, keyword_regex, need
from pipelines.errors import ConfigError

__all__ = [
    "check_existence",
    "check_forbidden_words",
    "check_frequency",
    "check_letter_frequency",
    "check_no_comma",
]


def check_existence(response: str, *, prompt: str = "", keywords: Sequence[str]) -> bool:
    """``keywords:existence``: every keyword occurs (case-insensitive regex search).

    >>> check_existence("Cats and DOGS", keywords=["dog", "cat"])
    True
    """
    need(keywords, "keywords")
    return all(keyword_regex(k, flags=re.IGNORECASE).search(response) for k in keywords)


def check_frequency(response: str, *, prompt: str = "", keyword: str, frequency: int, relation: str) -> bool:
    """``keywords:frequency``: non-overlapping matches of ``keyword`` (stripped),
    case-insensitive, compared with ``frequency``.

    >>> check_frequency("the cat sat on the cat", keyword="cat", frequency=2, relation="at least")
    True
    """
    need(keyword, "keyword")
    n = sum(1 for _ in keyword_regex(keyword.strip(), flags=re.IGNORECASE).finditer(response))
    return compare(n, count(frequency, "frequency"), relation)


def check_forbidden_words(response: str, *, prompt: str = "", forbidden_words: Sequence[str]) -> bool:
    """``keywords:forbidden_words``: no word matches as ``\\bword\\b`` (case-insensitive).

    >>> check_forbidden_words("a category", forbidden_words=["cat"])
    True
    """
    need(forbidden_words, "forbidden_words")
    return not any(keyword_regex(r"\b" + w + r"\b", flags=re.IGNORECASE).search(response) for w in forbidden_words)


def check_letter_frequency(response: str, *, prompt: str = "", letter: str, let_frequency: int, let_relation: str) -> bool:
    """``keywords:letter_frequency``: occurrences of the (lower-cased) character in the
    lower-cased response. Any single character counts literally, ``#`` and ``!``
    included (the current reference; an older one replaced non-letters at random).

    >>> check_letter_frequency("#a #b", letter="#", let_frequency=2, let_relation="at least")
    True
    """
    if not isinstance(letter, str) or len(letter) != 1:
        msg = f"kwarg 'letter' must be a single character, got {letter!r}"
        raise ConfigError(msg)
    char = letter.strip().lower()
    # The reference looks the character up in a Counter of characters: a whitespace
    # letter (stripped to "") or one that lower-cases to two characters counts 0.
    n = response.lower().count(char) if len(char) == 1 else 0
    return compare(n, count(let_frequency, "let_frequency"), let_relation, "let_relation")


def check_no_comma(response: str, *, prompt: str = "") -> bool:
    """``punctuation:no_comma``: no ASCII comma anywhere.

    >>> check_no_comma("one, two")
    False
    """
    return "," not in response
