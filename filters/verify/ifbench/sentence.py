"""IFBench ``sentence:*``: constraints that compare sentences with each other.

Sentences are NLTK Punkt English sentences of the whole response.
"""
from __future__ import annotations

import functools
import re
from itertools import pairwise

from filters.verify.ifbench.kwargs import integer, nonempty
from filters.verify.ifbench.text import PUNCTUATION, delete_punctuation, sentences

__all__ = ["check_alliteration_increment", "check_increment", "check_keyword"]

_LSTRIP = PUNCTUATION + " "


@functools.lru_cache(maxsize=1024)
def _whole_word(keyword: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(keyword)}\b", re.IGNORECASE)


def alliteration_score(sentence: str) -> int:
    """Words in runs of consecutive words that share a first letter.

    A run of k >= 2 words scores k; words are lower-cased whitespace chunks with leading
    punctuation stripped (chunks that are all punctuation are dropped).

    >>> alliteration_score("Peter Piper picked a peck"), alliteration_score("No match here")
    (3, 0)
    """
    words = [w for w in (c.lstrip(_LSTRIP) for c in sentence.lower().split()) if w]
    score, in_run = 0, False
    for a, b in pairwise(words):
        if a[0] == b[0]:
            score += 1 if in_run else 2
            in_run = True
        else:
            in_run = False
    return score


def check_alliteration_increment(response: str, *, prompt: str = "") -> bool:
    """``sentence:alliteration_increment``: each sentence scores strictly more
    alliterative words than the one before (see :func:`alliteration_score`; the first
    sentence may score 0).

    >>> check_alliteration_increment("I ran. Big bad wolf. Silly snakes slither slowly.")
    True
    >>> check_alliteration_increment("Big bad wolf. I ran.")
    False
    """
    previous = -1
    for sentence in sentences(response):
        score = alliteration_score(sentence)
        if score <= previous:
            return False
        previous = score
    return True


def check_increment(response: str, *, prompt: str = "", small_n: int) -> bool:
    """``sentence:increment``: each sentence has exactly ``small_n`` more words than the
    one before (words: whitespace chunks after deleting punctuation).

    Notes
    -----
    A response with no sentence at all fails (the reference raises ``IndexError``).

    >>> check_increment("I ran. I ran so far. I ran so very far away.", small_n=2)
    True
    """
    step = integer(small_n, "small_n")
    lengths = [len(delete_punctuation(s).split()) for s in sentences(response)]
    if not lengths:
        return False
    return all(b == a + step for a, b in pairwise(lengths))


def check_keyword(response: str, *, prompt: str = "", word: str, N: int) -> bool:
    """``sentence:keyword``: the ``N``-th sentence contains ``word`` as a whole word
    (case ignored).

    >>> check_keyword("First one. The second has Apple pie.", word="apple", N=2)
    True
    """
    nonempty(word, "word")
    position = integer(N, "N", minimum=1)
    sents = sentences(response)
    return len(sents) >= position and bool(_whole_word(word).search(sents[position - 1]))
