"""Numbers and relations in instruction text: "at most 150 words" -> ``("less than", 151)``.

IFEval stores a quantity as one of two relations, ``"less than"`` and ``"at least"``, so
every phrasing is mapped onto those: "at most N" and "N or fewer" become ``less than
N + 1``, "more than N" becomes ``at least N + 1``. Counts come as digits ("1,200") or
words ("twelve", "twenty-five", "twice"). The patterns here name their groups ``pre``,
``n``, ``post`` (with a digit suffix when one pattern holds several alternatives), which
:func:`group` and :func:`relation_of` read back.
"""
from __future__ import annotations

import functools
import re

from filters.verify.rules.spans import one_of

__all__ = ["NUM", "bounds", "group", "number", "post", "pre", "quantity", "quantity_range", "relation", "relation_of"]

_NUMBERS = {
    "zero": 0, "a single": 1, "single": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "a hundred": 100, "one hundred": 100,
    "hundred": 100, "a dozen": 12,
}
_TIMES = {"once": 1, "twice": 2, "thrice": 3}
_TENS = r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[\s-](?:one|two|three|four|five|six|seven|eight|nine)\b"
NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+|" + _TENS + "|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + r")"
_AT_LEAST = r"at\s+least|no\s+less\s+than|no\s+fewer\s+than|not\s+less\s+than|not\s+fewer\s+than|a\s+minimum\s+of|minimum\s+of|minimum"
_MORE = r"more\s+than|over|greater\s+than|in\s+excess\s+of|exceeding|above"
_LESS = r"less\s+than|fewer\s+than|under|below"
_AT_MOST = r"at\s+most|no\s+more\s+than|not\s+more\s+than|a\s+maximum\s+of|maximum\s+of|maximum|up\s+to|no\s+longer\s+than"


def pre(name: str = "pre") -> str:
    """A relation word before the count ("at least", "no more than", "exactly"), as group ``name``."""
    return rf"(?P<{name}>{_AT_LEAST}|{_MORE}|{_LESS}|{_AT_MOST}|exactly|only|just)"


def post(name: str = "post") -> str:
    """A relation word after the count ("+", "or more", "at most"), as group ``name``."""
    return rf"(?P<{name}>\+|or\s+more|or\s+above|or\s+greater|or\s+less|or\s+fewer|or\s+below|at\s+least|at\s+most)"


def number(word: str) -> int:
    """An integer from digits ("1,200") or a number word ("twelve", "twice").

    >>> number("1,200"), number("Twelve"), number("twice"), number("twenty-five")
    (1200, 12, 2, 25)
    """
    w = re.sub(r"\s+", " ", word.strip().lower())
    if w.replace(",", "").isdigit():
        return int(w.replace(",", ""))
    tens, _, unit = w.replace("-", " ").partition(" ")
    if unit and tens in _NUMBERS and unit in _NUMBERS:  # "twenty-five"
        return _NUMBERS[tens] + _NUMBERS[unit]
    return _NUMBERS.get(w, _TIMES.get(w, -1))


def relation(pre: str | None, n: int, post: str | None = None) -> tuple[str, int] | None:
    """IFEval's (relation, threshold) for a quantity phrase; ``None`` when it gives none.

    >>> relation("at most", 150), relation("more than", 30), relation(None, 400, "or more"), relation(None, 5)
    (('less than', 151), ('at least', 31), ('at least', 400), None)
    """
    for phrase in (pre, post):
        p = re.sub(r"\s+", " ", (phrase or "").lower()).strip()
        if not p or p in ("exactly", "only", "just"):
            continue
        if p in ("+", "or more", "or above", "or greater", "at least", "more") or re.fullmatch(_AT_LEAST, p):
            return ("at least", n)
        if re.fullmatch(_MORE, p):
            return ("at least", n + 1)
        if re.fullmatch(_LESS, p):
            return ("less than", n)
        if p in ("or less", "or fewer", "or below", "at most") or re.fullmatch(_AT_MOST, p):
            return ("less than", n + 1)
    return None


@functools.cache
def quantity(unit: str, *, adjectives: int = 2) -> re.Pattern[str]:
    """``[pre] N [post] [adjectives] unit [post]``: "at least 300 words", "300+ word", "6 or more sentences"."""
    adj = rf"(?:[a-z'-]+\s+){{0,{adjectives}}}?" if adjectives else ""
    return re.compile(
        rf"(?:{pre()}\s+(?:a\s+total\s+of\s+)?)?(?P<n>{NUM})\s*(?:{post()}\s*)?[\s-]*{adj}(?P<unit>{unit})\b(?:\s+(?P<post2>or\s+more|or\s+less|or\s+fewer|at\s+least|at\s+most|minimum|maximum))?",
        re.IGNORECASE,
    )


def group(m: re.Match[str], prefix: str) -> str | None:
    """The first set group named ``prefix`` or ``prefix<digit>`` (alternatives of one pattern)."""
    return next((v for k, v in m.groupdict().items() if v is not None and re.fullmatch(rf"{prefix}\d*", k)), None)


def relation_of(m: re.Match[str]) -> tuple[str, int] | None:
    """The relation a match of a quantity pattern states (groups ``pre``, ``n``, ``post``)."""
    n = number(group(m, "n") or "")
    if n < 0:
        return None
    return relation(group(m, "pre"), n, group(m, "post"))


@functools.cache
def quantity_range(unit: str, *, adjectives: int = 2) -> re.Pattern[str]:
    """"20 to 25 sentences", "5 or 6 sentences", "sentences ... in the range of 40 to 60"."""
    adj = rf"(?:[a-z'-]+\s+){{0,{adjectives}}}?"
    return one_of(
        rf"(?:between\s+|from\s+)?(?P<a>{NUM})\s*(?:-|–|to|and|or)\s*(?P<b>{NUM})\s+{adj}(?:{unit})\b",
        rf"\b(?:{unit})\b[^.\n]{{0,60}}?(?:between|range\s+of|from)\s+(?P<a2>{NUM})\s*(?:-|–|to|and)\s*(?P<b2>{NUM})\b",
    )


def bounds(m: re.Match[str]) -> tuple[int, int] | None:
    """``(a, b)`` of a :func:`quantity_range` match, or ``None`` unless ``0 <= a <= b``."""
    a, b = number(group(m, "a") or ""), number(group(m, "b") or "")
    return (a, b) if 0 <= a <= b else None
