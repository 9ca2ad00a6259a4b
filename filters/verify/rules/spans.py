"""Where the constraint rules look: sentence bounds, quoted stretches, keyword lists, negation.

Every rule yields :data:`Hit` tuples ``(position, instruction_id, kwargs)``; positions
put the extracted constraints in reading order. A rule's pattern lists the phrasings it
reads, one alternative a line, through :func:`one_of`.
"""
from __future__ import annotations

import bisect
import functools
import re
from typing import Any

__all__ = ["NEGATION", "QUOTED", "Hit", "one_of", "quoted", "sentence", "word_list"]

Hit = tuple[int, str, dict[str, Any]]

# A negation cue before a phrase ("do not use any commas", "without capital letters").
NEGATION = re.compile(r"\b(?:no|not|cannot|never|without|refrain|avoid|avoiding|nor|free|forbidden|prohibited|zero|none|ban|banned|omit|exclude)\b|n't\b", re.IGNORECASE)


def one_of(*phrasings: str) -> re.Pattern[str]:
    """One case-insensitive pattern matching any of ``phrasings`` (regexes, tried in order).

    >>> one_of(r"at\\s+least", r"minimum").findall("At least 3, minimum 2")
    ['At least', 'minimum']
    """
    return re.compile("|".join(phrasings), re.IGNORECASE)


_SENT_END = re.compile(r"(?<=[.!?])\s+(?=\S)|\n")


@functools.lru_cache(maxsize=64)
def _boundaries(text: str) -> tuple[list[int], list[int]]:
    ends = [(m.start(), m.end()) for m in _SENT_END.finditer(text)]
    return [e for _, e in ends], [s for s, _ in ends]


def sentence(text: str, pos: int) -> tuple[int, int]:
    """Bounds of the sentence around ``pos`` (cut at ``.!?`` + space, or a newline)."""
    starts, stops = _boundaries(text)
    i = bisect.bisect_right(starts, pos)
    j = bisect.bisect_left(stops, pos)
    return (starts[i - 1] if i else 0), (stops[j] if j < len(stops) else len(text))


QUOTED = re.compile(r"\"([^\"\n]+)\"|“([^”\n]+)”|”([^\"”\n]+)[\"”]|'([^'\n]+)'|‘([^’\n]+)’|`([^`\n]+)`")


def quoted(span: str) -> list[str]:
    """The text inside each quoted stretch of ``span`` ("", “”, '', ‘’ or backticks), in order."""
    return [next(g for g in m.groups() if g is not None) for m in QUOTED.finditer(span)]


_LIST_STOP = re.compile(r"[.;:!?\n(]|\s(?:in|to|within|throughout|anywhere|from|for|at|when|while|as|if|so|but|because|should|must|and\s+(?:do|make|use|be|also|include|avoid|don't|never|not|write|your|the\s+\w+\s+should|it)|also|please|at\s+all)\b", re.IGNORECASE)
_WORD_ITEM = re.compile(r"^[A-Za-z][A-Za-z'-]*$")


def word_list(span: str) -> list[str]:
    """Keywords from the text after "keywords": quoted items if any, else a plain ``a, b and c``."""
    span = span.lstrip(" :")
    span = re.sub(r"^\[(.*?)\]", r"\1", span)
    if span[:1] in "\"“”'‘`":
        end = re.search(r"[.;!?\n](?=\s|$)|\s(?:in|to|within|anywhere|from|should|must|at\s+least|at\s+most|less|more|are|is)\b", _strip_quoted(span))
        return quoted(span[: end.start()] if end else span)
    stop = _LIST_STOP.search(span)
    head = span[: stop.start()] if stop else span
    items = [w.strip(" '\"") for w in re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+|/", head) if w.strip()]
    return items if items and all(_WORD_ITEM.match(w) for w in items) else []


def _strip_quoted(span: str) -> str:
    """``span`` with quoted stretches blanked out, positions kept."""
    return QUOTED.sub(lambda m: " " * len(m.group(0)), span)
