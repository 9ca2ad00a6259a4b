"""IFBench ``ratio:*``: proportions of stop words, sentence types and trigram overlap.

Sentences are NLTK Punkt English sentences; a sentence's type is read off its final
mark (``.`` declarative, ``?`` interrogative, ``!`` exclamatory), looking through
closing quotes and brackets: ``He called it "paraphrasing."`` is declarative. A sentence
ending in anything else (an emoji, a colon, no mark) has no type.

Deliberate deviation: the current reference tests ``sentence.endswith(".")``. Punkt
keeps a closing quote with its sentence, so there a quoted declarative has no type; the
published IFBench verdicts (and the IFEval-style splitter, which moves ``."`` to
``".``) count it as declarative. See ``DISAGREEMENTS.md``.
"""
from __future__ import annotations

from filters.verify.ifbench.kwargs import integer, nonempty
from filters.verify.ifbench.lexicon import STOPWORDS
from filters.verify.ifbench.text import (
    count_words,
    sentences,
    split_words,
    word_tokenize,
    word_tokens,
)

__all__ = [
    "check_overlap",
    "check_sentence_balance",
    "check_sentence_type",
    "check_sentence_words",
    "check_stop_words",
]


_CLOSERS = "\"'\u201d\u2019\u00bb)]"  # " ' ” ’ » ) ]


def sentence_mark(sentence: str) -> str:
    """The sentence's final character once trailing whitespace, closing quotes and
    closing brackets are removed (``""`` if nothing is left).

    >>> sentence_mark('He called it "paraphrasing."'), sentence_mark("(Really?) "), sentence_mark("Go 🚀")
    ('.', '?', '🚀')
    """
    core = sentence.rstrip().rstrip(_CLOSERS)
    return core[-1] if core else ""


def _type_counts(response: str) -> tuple[int, int, int]:
    marks = [sentence_mark(s) for s in sentences(response)]
    return marks.count("."), marks.count("?"), marks.count("!")


def check_stop_words(response: str, *, prompt: str = "", percentage: int) -> bool:
    """``ratio:stop_words``: stop words are at most ``percentage`` % of the ``\\w+`` runs
    (NLTK's English list, case-insensitive); a response without words fails.

    >>> check_stop_words("The cat sat on the mat", percentage=50)
    True
    """
    n = count_words(response)
    if n == 0:
        return False
    stop = sum(1 for t in word_tokens(response) if t.lower() in STOPWORDS)
    return stop / n * 100 <= integer(percentage, "percentage")


def check_sentence_type(response: str, *, prompt: str = "") -> bool:
    """``ratio:sentence_type``: declaratives == 2 x interrogatives.

    Notes
    -----
    As in the reference, zero of each satisfies the equation.

    >>> check_sentence_type("It rains. It pours. Why?")
    True
    """
    declarative, interrogative, _ = _type_counts(response)
    return declarative == 2 * interrogative


def check_sentence_balance(response: str, *, prompt: str = "") -> bool:
    """``ratio:sentence_balance``: as many declaratives as interrogatives as exclamations.

    >>> check_sentence_balance("It rains. Why? Wow!")
    True
    """
    declarative, interrogative, exclamatory = _type_counts(response)
    return declarative == interrogative == exclamatory


def _trigrams(tokens: list[str]) -> set[tuple[str, str, str]]:
    return set(zip(tokens, tokens[1:], tokens[2:]))


def check_overlap(response: str, *, prompt: str = "", reference_text: str, percentage: int) -> bool:
    """``ratio:overlap``: the share of the response's distinct word trigrams (NLTK
    tokens) that also occur in ``reference_text`` is ``percentage`` ± 2 %.

    >>> check_overlap("a b c d", reference_text="a b c x", percentage=50)
    True
    """
    ngrams = _trigrams(word_tokenize(response))
    if not ngrams:
        return False
    ref = _trigrams(word_tokenize(nonempty(reference_text, "reference_text")))
    overlap = len(ngrams & ref) / len(ngrams) * 100
    pct = integer(percentage, "percentage")
    return pct - 2 <= overlap <= pct + 2


def check_sentence_words(response: str, *, prompt: str = "") -> bool:
    """``ratio:sentence_words``: exactly three sentences of equal length in characters
    (each stripped) and no word used twice (lower-cased, punctuation deleted).

    >>> check_sentence_words("Cats nap. Dogs run. Owls fly.")
    True
    >>> check_sentence_words("Cats nap. Dogs nap. Owls fly.")
    False
    """
    sents = sentences(response)
    if len(sents) != 3 or len({len(s.strip()) for s in sents}) != 1:
        return False
    words = split_words(" ".join(sents))
    return len(words) == len(set(words))
