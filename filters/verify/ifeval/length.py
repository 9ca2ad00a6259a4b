"""IFEval ``length_constraints:*``: sentences, ``***`` paragraphs, words, ``\\n\\n`` paragraphs.

Two different paragraph notions, as in the reference: ``number_paragraphs`` splits on a
markdown divider ``***``, ``nth_paragraph_first_word`` on a blank line (``\\n\\n``).
"""
from __future__ import annotations

import re

from filters.verify.ifeval.kwargs import compare, count, string
from filters.verify.ifeval.tokens import count_sentences, count_words
from pipelines.errors import ConfigError

__all__ = [
    "check_nth_paragraph_first_word",
    "check_number_paragraphs",
    "check_number_sentences",
    "check_number_words",
]

_DIVIDER_RE = re.compile(r"\s?\*\*\*\s?")
# Characters that end the first word of a paragraph (the reference's set).
_WORD_END = frozenset(".,?!'\"")


def check_number_sentences(response: str, *, prompt: str = "", num_sentences: int, relation: str) -> bool:
    """``length_constraints:number_sentences``: Punkt English sentence count vs threshold.

    >>> check_number_sentences("One. Two. Three.", num_sentences=3, relation="at least")
    True
    """
    threshold = count(num_sentences, "num_sentences")
    return compare(count_sentences(response), threshold, relation)


def check_number_words(response: str, *, prompt: str = "", num_words: int, relation: str) -> bool:
    """``length_constraints:number_words``: ``\\w+`` runs vs threshold ("don't" is 2).

    >>> check_number_words("don't stop", num_words=3, relation="less than")
    False
    """
    threshold = count(num_words, "num_words")
    return compare(count_words(response), threshold, relation)


def check_number_paragraphs(response: str, *, prompt: str = "", num_paragraphs: int) -> bool:
    """``length_constraints:number_paragraphs``: exactly n parts between ``***`` dividers.

    A blank part before the first or after the last divider is not counted; a blank
    part in between (two dividers in a row) fails the check.

    >>> check_number_paragraphs("a\\n***\\nb", num_paragraphs=2)
    True
    """
    n_wanted = count(num_paragraphs, "num_paragraphs")
    parts = _DIVIDER_RE.split(response)
    last = len(parts) - 1
    n = len(parts)
    for i, part in enumerate(parts):
        if not part.strip():
            if i == 0 or i == last:
                n -= 1
            else:
                return False
    return n == n_wanted


def check_nth_paragraph_first_word(
    response: str, *, prompt: str = "", num_paragraphs: int, nth_paragraph: int, first_word: str
) -> bool:
    """``length_constraints:nth_paragraph_first_word``: n non-blank ``\\n\\n`` paragraphs
    and paragraph ``nth_paragraph`` starts with ``first_word`` (case-insensitive).

    The first word is cut at the first of ``. , ? ! ' "`` after leading quotes are
    removed. Like the reference, the nth paragraph is indexed among *all* split parts,
    blank ones included, while the count skips blank ones.

    >>> check_nth_paragraph_first_word("Hi.\\n\\n\\"Hello,\\" she said", num_paragraphs=2, nth_paragraph=2, first_word="hello")
    True
    """
    n_wanted = count(num_paragraphs, "num_paragraphs")
    nth = count(nth_paragraph, "nth_paragraph", minimum=1)
    if nth > n_wanted:
        msg = f"kwarg 'nth_paragraph' ({nth}) must not exceed 'num_paragraphs' ({n_wanted})"
        raise ConfigError(msg)
    wanted_word = string(first_word, "first_word").lower()
    parts = response.split("\n\n")
    n = sum(1 for part in parts if part.strip())
    if nth > n:
        return False
    paragraph = parts[nth - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].lstrip("'").lstrip('"')
    first = []
    for char in word:
        if char in _WORD_END:
            break
        first.append(char.lower())
    return n == n_wanted and "".join(first) == wanted_word
