"""Rules for ``length_constraints:*``: words, sentences, paragraphs, a paragraph's first word.

A range ("20 to 25 sentences") becomes two constraints, ``at least 20`` and ``less than
26``, as IFEval annotates ranges; "exactly N" likewise. A count per part ("each
paragraph has exactly one sentence") is not a total and yields nothing.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from filters.verify.rules.quantities import (
    NUM,
    bounds,
    group,
    number,
    post,
    pre,
    quantity,
    quantity_range,
    relation_of,
)
from filters.verify.rules.spans import Hit, one_of, sentence

__all__ = ["lengths", "paragraphs"]


def _count_hits(text: str, unit: str, iid: str, key: str, rel_key: str = "relation", skip: Any = None) -> Iterator[Hit]:
    """Hits for "[relation] N <unit>" and "N to M <unit>" (two hits, IFEval's way to say a range)."""
    taken: list[tuple[int, int]] = []
    for m in quantity_range(unit).finditer(text):
        ab = bounds(m)
        if ab and not (skip and skip(text, m)):
            taken.append(m.span())
            yield m.start(), iid, {rel_key: "at least", key: ab[0]}
            yield m.start(), iid, {rel_key: "less than", key: ab[1] + 1}
    for m in quantity(unit).finditer(text):
        if any(a <= m.start() < b for a, b in taken) or (skip and skip(text, m)) or _per_item(text, m.start()):
            continue
        n = number(m.group("n"))
        if (m.group("pre") or "").lower() == "exactly" and n > 0:
            yield m.start(), iid, {rel_key: "at least", key: n}
            yield m.start(), iid, {rel_key: "less than", key: n + 1}
            continue
        rel = relation_of(m)
        if rel is not None:
            yield m.start(), iid, {rel_key: rel[0], key: rel[1]}
    # "the total number of words in your response should be 250 or more"
    for m in re.finditer(rf"\bnumber\s+of\s+(?:{unit})\b[^.\n]{{0,40}}?\b(?:be|is)\s+(?:{pre()}\s+)?(?P<n>{NUM})\s*(?:{post()})?", text, re.IGNORECASE):
        rel = relation_of(m)
        if rel is not None and not (skip and skip(text, m)):
            yield m.start(), iid, {rel_key: rel[0], key: rel[1]}


def _per_item(text: str, pos: int) -> bool:
    """"Each line should contain exactly one sentence": a count per part, not in total."""
    return bool(re.search(r"\b(?:each|every|per)\s+\w+\s+(?:\w+\s+){0,3}$", text[sentence(text, pos)[0] : pos], re.IGNORECASE))


def _not_plain_words(text: str, m: re.Match[str]) -> bool:
    """"words in all capital letters" and "keywords" are other constraints."""
    end = sentence(text, m.start())[1]
    return bool(re.search(r"capital|all[\s-]caps|upper\s*case|\bcaps\b|\bitalic|highlight", text[m.start() : end], re.IGNORECASE)) or bool(re.search(r"key$", text[max(0, m.start() - 3) : m.start()], re.IGNORECASE))


def lengths(text: str) -> Iterator[Hit]:
    """``length_constraints:number_words`` and ``number_sentences``: "in at most 50 words"."""
    yield from _count_hits(text, r"words?", "length_constraints:number_words", "num_words", skip=_not_plain_words)
    yield from _count_hits(text, r"sentences?", "length_constraints:number_sentences", "num_sentences")


_PARAGRAPHS = quantity(r"paragraphs?", adjectives=1)
_PARTS = quantity(r"paragraphs?|sections?|parts?|stanzas?|steps?|chunks?|blocks?|segments?|verses?", adjectives=1)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10}
_ORD = r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|final|\d+(?:st|nd|rd|th)"
_NTH = one_of(
    rf"(?:(?:very\s+)?(?P<ord>{_ORD})\s+paragraph|paragraph\s+(?P<k>\d+))\s+(?:must\s+|should\s+|has\s+to\s+|needs\s+to\s+|will\s+)?(?:start|begin)s?\s+with\s+(?:the\s+|a\s+)?(?:word\s+)?(?P<w>[\"“'‘]?[A-Za-z]+)",
    rf"(?:start|begin)\s+(?:the\s+)?(?:(?:very\s+)?(?P<ord2>{_ORD})\s+paragraph|paragraph\s+(?P<k2>\d+))\s+with\s+(?:the\s+|a\s+)?(?:word\s+)?(?P<w2>[\"“'‘]?[A-Za-z]+)",
)
_DIVIDER = re.compile(r"(?<!\*)\*\*\*(?!\*)|markdown\s+divider", re.IGNORECASE)
_DIVIDER_LINE = re.compile(r"^\s*\*\*\*\s*$", re.MULTILINE)


def _exact_counts(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """(position, N) of "N <unit>" / "exactly N <unit>" (no other relation: these are exact counts)."""
    out = []
    for m in pattern.finditer(text):
        said = (m.group("pre") or "").lower()
        n = number(m.group("n"))
        if n > 0 and said in ("", "exactly", "only", "just", "at least"):
            out.append((m.start(), n))
    return out


def paragraphs(text: str) -> Iterator[Hit]:
    """``nth_paragraph_first_word`` ("paragraph 2 must start with 'However'"), else
    ``number_paragraphs`` when the text names the ``***`` divider IFEval counts by."""
    counts = _exact_counts(_PARAGRAPHS, text)
    nth = _NTH.search(text)
    if nth and counts:
        total = counts[0][1]
        ordinal = (group(nth, "ord") or "").lower()
        k = group(nth, "k")
        if k:
            index = int(k)
        elif ordinal in ("last", "final"):
            index = total
        else:
            index = _ORDINALS.get(ordinal) or int(re.sub(r"\D", "", ordinal) or 0)
        word = (group(nth, "w") or "").lstrip("\"“'‘").lower()
        if 1 <= index <= total:
            yield counts[0][0], "length_constraints:nth_paragraph_first_word", {"num_paragraphs": total, "nth_paragraph": index, "first_word": word}
        return
    divider = _DIVIDER.search(text)
    if not divider:
        return
    # "exactly 3 paragraphs", else the number of parts in a written-out example, else "4 sections"
    lines = _DIVIDER_LINE.findall(text)
    example = len(lines) + 1 if lines and not re.search(r"^\s*(?:\.\.\.|…)\s*$", text[text.rfind("***") :], re.MULTILINE) else 0
    parts = counts or _exact_counts(_PARTS, text) or ([(divider.start(), example)] if example > 1 else [])
    if parts:
        yield parts[0][0], "length_constraints:number_paragraphs", {"num_paragraphs": parts[0][1]}

