"""Rules for ``change_case:*``: the whole answer in lower or upper case, or a count of
words in capitals.

A sentence about *some* words in capitals ("use at least 3 words in all caps") is a
count, never a whole-answer case constraint; "no capital letters" is lowercase.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from filters.verify.rules.quantities import (
    NUM,
    bounds,
    pre,
    quantity_range,
    relation_of,
)
from filters.verify.rules.spans import NEGATION, Hit, one_of, sentence

__all__ = ["capital_frequency", "english_case"]

_CAPS = r"capital|all[\s-]caps|\bcaps\b|upper\s*case|capitali[sz]"
_CAPS_WORDS = re.compile(rf"\b(?:words?|phrases?|terms?)\b[^.\n]*(?:{_CAPS})|(?:{_CAPS})\w*\s+(?:\w+\s+){{0,2}}(?:words?|phrases?)\b", re.IGNORECASE)
_WHOLE = re.compile(r"\b(?:entire|whole|every|all\s+(?:your\s+|of\s+the\s+|the\s+)?(?:letters|words)|all\s+letters|only)\b", re.IGNORECASE)
_COUNT = re.compile(rf"(?:{pre()}\s+)?(?P<n>{NUM}|once|twice|thrice)\b(?:\s*(?P<post>\+|or\s+more|or\s+less|or\s+fewer))?(?:\s+times\b)?", re.IGNORECASE)


def _caps_word_sentences(text: str) -> list[tuple[int, int]]:
    """Sentences about *some* words in capitals (a count), not the whole response."""
    out = []
    for m in _CAPS_WORDS.finditer(text):
        s = sentence(text, m.start())
        clause = text[s[0] : s[1]]
        if _WHOLE.search(clause) and not re.search(r"\d|times|less|more|fewer|least|most|some|few", clause, re.IGNORECASE):
            continue
        if s not in out:
            out.append(s)
    return out


def _caps_counts(text: str, start: int, end: int) -> list[tuple[str, int]]:
    """Relations in one sentence about capitalized words; counts next to "words"/"times" first."""
    clause = text[start:end]
    r = quantity_range(r"(?:such\s+)?(?:capitali[sz]ed\s+|all-caps\s+)?words?|times").search(clause)
    if r and bounds(r):
        a, b = bounds(r)  # type: ignore[misc]
        return [("at least", a), ("less than", b + 1)]
    near, other = [], []
    for c in _COUNT.finditer(clause):
        rel = relation_of(c) if (c.group("pre") or c.group("post")) else None
        if rel is not None:
            after = clause[c.end() : c.end() + 30]
            (near if re.match(r"\s*(?:times|(?:\w+\s+){0,2}(?:words?|phrases?)\b|\W*$)", after, re.IGNORECASE) or re.search(r"times", c.group(0)) else other).append(rel)
    return near or other


def capital_frequency(text: str) -> Iterator[Hit]:
    """"use words in all capital letters at least 3 times" -> ``change_case:capital_word_frequency``."""
    hits: list[tuple[int, tuple[str, int]]] = []
    asks_some = None
    for start, end in _caps_word_sentences(text):
        counts = _caps_counts(text, start, end)
        if not counts:
            nxt = sentence(text, end + 1) if end < len(text) else None
            if nxt and re.search(r"\b(?:those|these|such|the)\b[^.]*\bwords\b", text[nxt[0] : nxt[1]], re.IGNORECASE):
                counts = _caps_counts(text, *nxt)
        if re.search(r"\b(?:use|include|add|some|few|several)\b", text[start:end], re.IGNORECASE):
            asks_some = start if asks_some is None else asks_some
        hits.extend((start, c) for c in counts if (start, c) not in hits)
    # "use some words in all caps, but fewer than 10": IFEval writes both bounds
    if asks_some is not None and not any(rel == "at least" for _, (rel, _n) in hits):
        hits.insert(0, (asks_some, ("at least", 1)))
    seen = set()
    for pos, (rel, n) in hits:
        if (rel, n) not in seen:
            seen.add((rel, n))
            yield pos, "change_case:capital_word_frequency", {"capital_relation": rel, "capital_frequency": n}


_LOWER = re.compile(r"\b(?:all|only|in|entirely|entire|whole|use|using|with|written|be|are|is)\s+(?:\w+\s+){0,2}?lower[\s-]*cas(?:e[ds]?|ing)|lower[\s-]*case\s+(?:letters\s+)?only|\blowercased\b", re.IGNORECASE)
_WHOLE_UPPER = one_of(
    r"\b(?:in|using|use|with|only|written\s+in|answer\s+in)\s+(?:all\s+|only\s+)?(?:capital\s+letters|caps|capitals|upper\s*case)",
    r"\ball\s+(?:capital|upper\s*case)\s+letters|\ball[\s-]caps\b|\bcapitali[sz]e\s+(?:all|every)|\b(?:all|every)\s+(?:\w+\s+){0,8}?(?:capitali[sz]ed|in\s+(?:all\s+)?capital|upper\s*case)",
    r"\bno\s+lower\s*case",
)
_UPPER = re.compile(rf"(?:{_CAPS})\w*", re.IGNORECASE)
_NEG_BEFORE = re.compile(r"(?:\b(?:no|not|never|without|any|avoid|zero|refrain)\b|n't)\W+(?:\w+\W+){0,3}$", re.IGNORECASE)


def english_case(text: str) -> Iterator[Hit]:
    """"answer in all lowercase letters" / "in all caps" -> ``change_case:english_lowercase`` / ``english_capital``."""
    caps_word = _caps_word_sentences(text)
    lower = upper = None
    for m in _LOWER.finditer(text):
        if not NEGATION.search(text[sentence(text, m.start())[0] : m.start()]):
            lower = lower or m
    for m in _UPPER.finditer(text):
        s = sentence(text, m.start())
        if s in caps_word:
            continue
        before = text[s[0] : m.start()]
        if _NEG_BEFORE.search(before) or re.search(r"\b(?:no|not|never|without|n't)\b[^.]*$", before, re.IGNORECASE):
            if not re.search(r"\bletters?\b|\bcapital\b", text[m.start() : s[1]] + before[-40:], re.IGNORECASE):
                continue
            lower = lower or m
        elif _WHOLE_UPPER.search(text[s[0] : s[1]]):
            upper = upper or m
    if re.search(r"\bno\s+lower\s*case", text, re.IGNORECASE):
        lower = None
    for m, iid in ((upper, "change_case:english_capital"), (lower, "change_case:english_lowercase")):
        if m is not None:
            yield m.start(), iid, {}
