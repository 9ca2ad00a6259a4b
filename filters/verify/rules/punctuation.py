"""The rule for ``punctuation:no_comma``: "do not use any commas", "commas are not allowed".

A comma named with a negation in its sentence, before it ("without commas") or after it
("commas should be avoided", "comma-free"), is the constraint; "comma-separated" and
"separate the items with commas" are not.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from filters.verify.rules.spans import NEGATION, Hit, sentence

__all__ = ["no_comma"]

_COMMA = re.compile(r"\bcommas?\b|\bcomma(?=[-\s]free)|\(,\)", re.IGNORECASE)
_NEG_AFTER = re.compile(r"^[\s\"'),]*(?:(?:is|are|should|must|may|can)\s+(?:not|never|be\s+avoided)|(?:is|are)\s+(?:not\s+allowed|forbidden|prohibited|banned)|are\s+off|[-\s]free)", re.IGNORECASE)


def no_comma(text: str) -> Iterator[Hit]:
    """"do not use any commas" -> ``punctuation:no_comma`` (not "comma-separated")."""
    for m in _COMMA.finditer(text):
        start, end = sentence(text, m.start())
        before, after = text[start : m.start()], text[m.end() : end]
        if re.search(r"separated\s+by|separate\w*\s+(?:\w+\s+)?(?:with|by)|comma-separated", before[-40:] + m.group(0) + after[:20], re.IGNORECASE):
            continue
        if NEGATION.search(before) or _NEG_AFTER.match(after):
            yield m.start(), "punctuation:no_comma", {}
            return
