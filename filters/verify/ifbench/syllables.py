"""Syllable counts for ``words:odd_even_syllables``, without the ``syllapy`` package.

IFBench calls ``syllapy.count(word)``: the word is lower-cased and stripped of ASCII
punctuation; a word containing a digit counts 0; a word in syllapy's bundled dictionary
(about 140k English words with CMU-style counts) gets that count; any other word gets a
vowel-group heuristic. syllapy is not a dependency here and its dictionary is not
shipped, so :func:`count_syllables` applies the heuristic to every word, plus a short
table of frequent words the heuristic gets wrong.

Known difference: for words outside that table the heuristic can be off by one where the
dictionary is right (``"area"`` 2 vs 3, ``"poem"`` 1 vs 2), which flips the parity the
constraint checks. Verdicts can differ from IFBench's on such words.
"""
from __future__ import annotations

import re
import string
from itertools import pairwise

__all__ = ["count_syllables"]

_VOWELS = frozenset("aeiouy")
_DIGIT = re.compile(r"\d")

# Frequent words where the vowel-group rule below is wrong (true counts, CMU dictionary).
_EXCEPTIONS: dict[str, int] = {
    "area": 3, "being": 2, "business": 2, "create": 2, "created": 3, "diet": 2,
    "doing": 2, "evening": 2, "everything": 3, "going": 2, "idea": 3, "ideas": 3,
    "lion": 2, "period": 3, "poem": 2, "quiet": 2, "radio": 3, "reality": 4,
    "science": 2, "seeing": 2, "serious": 3, "various": 3, "via": 2, "video": 3,
}  # fmt: skip


def _vowel_groups(word: str) -> int:
    # syllapy's fallback rule: one syllable per vowel group (y counts as a vowel),
    # minus a final silent "e", plus one back for a consonant + "le" ending; at least 1.
    n = 1 if word[0] in _VOWELS else 0
    n += sum(1 for prev, ch in pairwise(word) if ch in _VOWELS and prev not in _VOWELS)
    if word.endswith("e"):
        n -= 1
    if word.endswith("le") and len(word) > 2 and word[-3] not in _VOWELS:
        n += 1
    return max(n, 1)


def count_syllables(word: str) -> int:
    """Syllables in ``word`` (0 when it is empty after stripping or contains a digit).

    >>> [count_syllables(w) for w in ["cat", "table", "banana", "the", "2nd", "..."]]
    [1, 2, 3, 1, 0, 0]
    """
    word = word.strip().lower().strip(string.punctuation)
    if not word or _DIGIT.search(word):
        return 0
    if word in _EXCEPTIONS:
        return _EXCEPTIONS[word]
    return _vowel_groups(word)
