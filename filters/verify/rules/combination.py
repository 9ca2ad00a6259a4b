"""Rules for ``combination:*`` and ``startend:*``: repeat the request, two responses, an end
phrase, quotation marks around the answer (as :mod:`filters.verify.ifeval.combination` groups them).

The "repeat the request" instruction is read before every other rule (see
:func:`filters.verify.rules.extract_constraints`): :func:`repeat_span` says where it
sits so the other rules can skip it.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from filters.verify.rules.spans import QUOTED, Hit, one_of, sentence

__all__ = ["end_checker", "quotation", "repeat_prompt", "repeat_span", "two_responses"]


def two_responses(text: str) -> Iterator[Hit]:
    """"give two different responses separated by 6 asterisks" -> ``combination:two_responses``."""
    m = re.search(r"\*{6}|\b(?:six|6)\s+asterisks?(?:\s+symbols?)?\b", text, re.IGNORECASE)
    if m:
        yield m.start(), "combination:two_responses", {}


_REPEAT = one_of(
    r"\b(?:repeat|repleat)\s+(?:(?:the|this|my|all|it|your|a|of|and|above|below|exact|exactly|entire|whole|first|itself|following|original|input|request|prompt|question|sentence|text|line|instruction|word|for|by|verbatim)\b[\s,]*){1,6}",
    r"\brepeat\s+[\"“][^\"”]+[\"”]\s+word\s+(?:for|by)\s+word",
)
_REPEAT_OBJECT = re.compile(r"\b(?:request|prompt|question|sentence|text|line|instruction|it|word\s+(?:for|by)\s+word)\b|[\"“]", re.IGNORECASE)


def repeat_span(text: str) -> tuple[int, int, str] | None:
    """``(start, end, request)``: where the "repeat the request" instruction sits, and the
    request it means.

    The request is the text above the instruction's paragraph, or below it when the
    instruction comes first ("repeat the request below", or nothing above), as IFEval
    writes both.

    >>> repeat_span("Write a haiku.\\nFirst repeat the request word for word without change, then give your answer.")
    (15, 92, 'Write a haiku.')
    """
    m = _REPEAT.search(text)
    if not m or not _REPEAT_OBJECT.search(m.group(0)):
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    if start == 0:  # same line as the request: the instruction starts with its sentence
        start = sentence(text, m.start())[0]
        while start > 0:
            prev = sentence(text, start - 2)[0]
            if not re.search(r"\brep(?:l)?eat|\bsay\s+any|\bbefore\s+you\s+(?:answer|respond)", text[prev:start], re.IGNORECASE):
                break
            start = prev
    cut = text.find("\n\n", m.end())
    below = re.search(r"\b(?:below|following)\b", text[start : cut if cut > 0 else len(text)], re.IGNORECASE)
    if cut > 0 and (below or not text[:start].strip()):
        return start, cut, text[cut:].strip()
    if not text[:start].strip():
        return None
    return start, len(text), text[:start].strip()


def repeat_prompt(text: str) -> Iterator[Hit]:
    """"first repeat the request word for word" -> ``combination:repeat_prompt`` (see :func:`repeat_span`)."""
    span = repeat_span(text)
    if span and span[2]:
        yield span[0], "combination:repeat_prompt", {"prompt_to_repeat": span[2]}


_FILLER = r"(?:(?:the|this|a|following|exact|exactly|same|specific|precise|phrase|sentence|question|words?|line|quote|of|saying|like|read|as)\b[\s:]*)*"
_END = one_of(
    rf"\b(?:end|finish|conclude|close|wrap\s+up)\w*\s+(?:\w+\s+){{0,4}}?(?:with|by)\s*:?\s*{_FILLER}",
    rf"\b(?:very\s+)?(?:last\s+(?:sentence|line|words?|phrase)|end)\s+of\s+(?:your|the)\s+(?:\w+\s+){{0,2}}?(?:should|must|has\s+to|needs\s+to)\s+(?:be|read)\s*:?\s*{_FILLER}",
    rf"\b(?:very\s+)?last\s+(?:sentence|line|words?|phrase)\s+(?:should|must|has\s+to|needs\s+to)\s+be\s*:?\s*{_FILLER}",
)


def _end_phrase(text: str, start: int, trigger: str) -> str | None:
    rest = text[start:].lstrip(" \n")
    q = QUOTED.match(rest)
    if q:
        phrase = next(g for g in q.groups() if g is not None).strip()
        return phrase if re.search(r"\w", phrase) else None
    if not re.search(r"phrase|exact|sentence|question|words|read|:", trigger, re.IGNORECASE):
        return None
    m = re.match(r"([^\n\"]+?[?!]|[^\n\"]+?\.)(?=\s|$)", rest)
    if m and len(m.group(1).split()) <= 20:
        return m.group(1).strip()
    m = re.match(r"([^\n\"]+?)\s*$", rest)  # unpunctuated, to the end of the text
    return m.group(1).strip() if m and len(m.group(1).split()) <= 20 else None


def end_checker(text: str) -> Iterator[Hit]:
    """"end your response with 'Is there anything else?'" -> ``startend:end_checker``."""
    for m in _END.finditer(text):
        phrase = _end_phrase(text, m.end(), m.group(0))
        if phrase and not re.match(r"(?i)p\.\s?(?:p\.\s?)?s\b", phrase):
            yield m.start(), "startend:end_checker", {"end_phrase": phrase}
            return


_DQ = r"double[\s-]*quot\w*(?:\s+marks?)?|quotation\s+marks?|quotes"
_QUOTATION = one_of(
    rf"(?:wrap|enclos|surround|encapsulat|contain)\w*\s+(?:\w+\s+){{0,5}}?(?:in|with|inside|within|between|by|around)\s+(?:a\s+pair\s+of\s+|a\s+set\s+of\s+|\w+\s+)?(?:{_DQ})",
    rf"(?:{_DQ})\s+(?:should|must|need\s+to)\s+be\s+(?:placed|put|used|added)\s+around",
    rf"(?:put|place|add|use)\s+(?:\w+\s+)?(?:{_DQ})\s+around",
    rf"(?:in|inside|within|with|between)\s+(?:{_DQ})",
)


def quotation(text: str) -> Iterator[Hit]:
    """"wrap your entire response in double quotation marks" -> ``startend:quotation``."""
    for m in _QUOTATION.finditer(text):
        start, end = sentence(text, m.start())
        if re.search(r"\b(?:entire|whole|full|all|response|answer|output|reply|everything)\b", text[start:end], re.IGNORECASE) and not re.search(r"\b(?:phrase|title|word|name)s?\b\s*$", text[start : m.start()], re.IGNORECASE):
            yield m.start(), "startend:quotation", {}
            return
