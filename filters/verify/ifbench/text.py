"""Word splitting as IFBench does it: several slightly different notions of "word".

IFBench's checkers do not share one tokenizer. Depending on the constraint a word is a
whitespace-separated chunk (with or without ASCII punctuation stripped from its ends or
deleted from the whole text), a ``\\w+`` run, or an NLTK ``word_tokenize`` token. Which
one a checker uses changes verdicts (``"don't"`` is one chunk, two ``\\w+`` runs and the
tokens ``do`` / ``n't``), so each helper here is named for the exact recipe it
reproduces. Sentence splitting and ``word_tokenize`` come from
:mod:`filters.verify.ifeval.tokens` (NLTK Punkt English, loaded offline).
"""
from __future__ import annotations

import re
import string

from filters.verify.ifeval.tokens import count_words, sentences, word_tokenize

__all__ = [
    "PUNCTUATION",
    "count_words",
    "delete_punctuation",
    "sentences",
    "split_words",
    "strip_punctuation",
    "word_tokenize",
    "word_tokens",
    "word_tokens_without_punctuation",
]

#: ``string.punctuation``: the 32 ASCII punctuation characters. Unicode dashes, curly
#: quotes and ellipses are *not* in it, so IFBench keeps them as (parts of) words.
PUNCTUATION = string.punctuation
_DELETE_PUNCTUATION = str.maketrans("", "", PUNCTUATION)
_STRIP_CHARS = PUNCTUATION + " "
_WORD_RE = re.compile(r"\w+")


def delete_punctuation(text: str) -> str:
    """Delete every ASCII punctuation character (``"e.g."`` becomes ``"eg"``).

    >>> delete_punctuation("It's 3.5, ok?")
    'Its 35 ok'
    """
    return text.translate(_DELETE_PUNCTUATION)


def strip_punctuation(word: str) -> str:
    """Strip ASCII punctuation and spaces from both ends of ``word``.

    >>> strip_punctuation('"(hello)!"')
    'hello'
    """
    return word.strip(_STRIP_CHARS)


def split_words(text: str) -> list[str]:
    """Lower-case, delete ASCII punctuation, split on whitespace (IFBench ``_split_words``).

    >>> split_words("Don't STOP, don't!")
    ['dont', 'stop', 'dont']
    """
    return delete_punctuation(text.lower()).split()


def word_tokens(text: str) -> list[str]:
    """``\\w+`` runs (what ``count_words`` counts).

    >>> word_tokens("It's 3.5")
    ['It', 's', '3', '5']
    """
    return _WORD_RE.findall(text)


def word_tokens_without_punctuation(text: str) -> list[str]:
    """NLTK ``word_tokenize`` tokens that contain at least one letter or digit.

    Standalone punctuation (``,`` ``.`` ``''``) is dropped; clitics such as ``n't`` stay.

    >>> word_tokens_without_punctuation("Yes, it isn't.")
    ['Yes', 'it', 'is', "n't"]
    """
    return [t for t in word_tokenize(text) if any(ch.isalnum() for ch in t)]
