"""IFBench ``words:*``: constraints on the letters, lengths and positions of words.

Most of these split on whitespace after deleting ASCII punctuation, so ``"don't"`` is
the word ``dont`` and an em dash or a curly quote is a word of its own.
"""
from __future__ import annotations

import re
from collections import Counter
from itertools import pairwise

from filters.verify.ifbench.kwargs import integer, nonempty
from filters.verify.ifbench.syllables import count_syllables
from filters.verify.ifbench.text import (
    PUNCTUATION,
    delete_punctuation,
    sentences,
    split_words,
    strip_punctuation,
    word_tokens_without_punctuation,
)
from filters.verify.ifbench.verbs import starts_with_verb

__all__ = [
    "check_alphabet",
    "check_consonants",
    "check_keywords_specific_position",
    "check_last_first",
    "check_no_consecutive",
    "check_odd_even_syllables",
    "check_palindrome",
    "check_paragraph_last_first",
    "check_prime_lengths",
    "check_repeats",
    "check_start_verb",
    "check_vowel",
    "check_words_position",
]

_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_VOWELS = frozenset("aeiou")
_CONSONANTS = frozenset("bcdfghjklmnpqrstvwxyz")
# Two adjacent ASCII consonants (the reference lower-cases first; so does the caller).
_CLUSTER = re.compile("[bcdfghjklmnpqrstvwxyz]{2}")
_PRIMES = frozenset({2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97})
_STRIP = PUNCTUATION + " "


def check_alphabet(response: str, *, prompt: str = "") -> bool:
    """``words:alphabet``: each word starts with the letter after the previous word's
    first letter, wrapping from z to a (punctuation deleted, case ignored).

    >>> check_alphabet("Xylophones yield zesty, amazing beats.")
    True
    >>> check_alphabet("Apples bake. Dogs!")
    False
    """
    words = delete_punctuation(response).split()
    if not words:
        return False
    letter = words[0][0].lower()
    if letter not in _ALPHABET:
        return False
    for word in words[1:]:
        letter = _ALPHABET[(_ALPHABET.index(letter) + 1) % 26]
        if word[0].lower() != letter:
            return False
    return True


def check_vowel(response: str, *, prompt: str = "") -> bool:
    """``words:vowel``: a single line (no newline once stripped) using at most three of
    the vowels a, e, i, o, u (case ignored).

    >>> check_vowel("Cats nap at a bar")
    True
    >>> check_vowel("Cats nap\\nat a bar")
    False
    """
    paragraph = response.strip()
    if "\n" in paragraph:
        return False
    return len(_VOWELS & set(paragraph.lower())) <= 3


def check_consonants(response: str, *, prompt: str = "") -> bool:
    """``words:consonants``: every whitespace chunk (lower-cased, punctuation kept) has
    two adjacent consonants.

    >>> check_consonants("Strong black storms")
    True
    >>> check_consonants("Strong black storms hit")
    False
    """
    return all(_CLUSTER.search(w) for w in response.lower().split())


def check_palindrome(response: str, *, prompt: str = "") -> bool:
    """``words:palindrome``: at least 10 words (repeats count) of 5+ characters that read
    the same backwards (punctuation deleted, case ignored).

    >>> check_palindrome("Level, radar, kayak, civic, rotor, refer, level, radar, madam, stats.")
    True
    """
    words = delete_punctuation(response).lower().split()
    return sum(1 for w in words if len(w) >= 5 and w == w[::-1]) >= 10


def check_prime_lengths(response: str, *, prompt: str = "") -> bool:
    """``words:prime_lengths``: every word (punctuation deleted) has a prime length.

    >>> check_prime_lengths("We ate figs.")
    False
    >>> check_prime_lengths("We ate three plums.")
    True
    """
    return all(len(w) in _PRIMES for w in delete_punctuation(response).split())


def check_start_verb(response: str, *, prompt: str = "") -> bool:
    """``words:start_verb``: the first token is a verb (rule-based, see :mod:`.verbs`).

    >>> check_start_verb("Consider the following."), check_start_verb("The answer is no.")
    (True, False)
    """
    return starts_with_verb(response)


def check_repeats(response: str, *, prompt: str = "", small_n: int) -> bool:
    """``words:repeats``: no word (lower-cased, punctuation deleted) occurs more than
    ``small_n`` times.

    >>> check_repeats("The cat and the dog.", small_n=2), check_repeats("the The THE", small_n=2)
    (True, False)
    """
    limit = integer(small_n, "small_n")
    return all(n <= limit for n in Counter(split_words(response)).values())


def check_odd_even_syllables(response: str, *, prompt: str = "") -> bool:
    """``words:odd_even_syllables``: consecutive words alternate between an odd and an
    even number of syllables (punctuation deleted; see :mod:`.syllables`).

    >>> check_odd_even_syllables("Cat table dog")
    True
    >>> check_odd_even_syllables("Cat dog table")
    False
    """
    parities = [count_syllables(w) % 2 for w in delete_punctuation(response).lower().split()]
    return all(a != b for a, b in pairwise(parities))


def check_last_first(response: str, *, prompt: str = "") -> bool:
    """``words:last_first``: each sentence's last word is the next sentence's first word
    (case ignored; punctuation stripped from the sentence ends only).

    >>> check_last_first("I like cats. Cats like fish. Fish swim.")
    True
    """
    sents = sentences(response)
    for cur, nxt in pairwise(sents):
        last = cur.rstrip(_STRIP).split()
        first = nxt.lstrip(_STRIP).split()
        if not last or not first or last[-1].lower() != first[0].lower():
            return False
    return True


def check_paragraph_last_first(response: str, *, prompt: str = "") -> bool:
    """``words:paragraph_last_first``: every non-empty line starts and ends with the same
    word (case ignored; punctuation stripped from the line ends only).

    >>> check_paragraph_last_first("Time heals all wounds in time.\\n\\nHope springs eternal, hope!")
    True
    """
    for line in response.split("\n"):
        words = strip_punctuation(line.strip().lower()).split()
        if words and words[0] != words[-1]:
            return False
    return True


def check_no_consecutive(response: str, *, prompt: str = "") -> bool:
    """``words:no_consecutive``: no two adjacent words share a first letter (lower-cased,
    punctuation deleted).

    >>> check_no_consecutive("Big red apples"), check_no_consecutive("Big bad apples")
    (True, False)
    """
    words = split_words(response)
    return all(a[0] != b[0] for a, b in pairwise(words))


def check_keywords_specific_position(response: str, *, prompt: str = "", keyword: str, n: int, m: int) -> bool:
    """``words:keywords_specific_position``: the ``m``-th word of the ``n``-th sentence
    is ``keyword`` (case ignored). Words are NLTK tokens with a letter or digit, so
    punctuation does not shift the count.

    >>> check_keywords_specific_position("Hi there. Alpha, beta target gamma.", keyword="target", n=2, m=3)
    True
    """
    nonempty(keyword, "keyword")
    sent_no, word_no = integer(n, "n", minimum=1), integer(m, "m", minimum=1)
    sents = sentences(response)
    if len(sents) < sent_no:
        return False
    words = word_tokens_without_punctuation(sents[sent_no - 1])
    return len(words) >= word_no and words[word_no - 1].lower() == keyword.strip().lower()


def check_words_position(response: str, *, prompt: str = "", keyword: str) -> bool:
    """``words:words_position``: the second word and the second-to-last word are both
    ``keyword`` (case ignored; NLTK tokens with a letter or digit).

    >>> check_words_position("The whisper grew into a whisper again.", keyword="whisper")
    True
    """
    nonempty(keyword, "keyword")
    words = word_tokens_without_punctuation(response)
    target = keyword.strip().lower()
    return len(words) >= 2 and words[1].lower() == words[-2].lower() == target
