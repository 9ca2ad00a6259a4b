"""Rules for ``detectable_format:*`` and ``detectable_content:*``: bullets, highlights,
sections, JSON, a title, placeholders, a postscript, a fixed answer.

A count here is exact ("4 bullet points", "exactly 4"): IFEval's checkers for bullets,
sections and placeholders take a number, not a relation.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from filters.verify.rules.quantities import NUM, group, number, pre, quantity
from filters.verify.rules.spans import Hit, one_of

__all__ = ["bullets", "constrained_response", "highlights", "json_format", "multiple_sections", "placeholders", "postscript", "title"]


_PLACEHOLDERS = quantity(r"placeholders?", adjectives=2)


def placeholders(text: str) -> Iterator[Hit]:
    """"at least 3 placeholders such as [name]" -> ``detectable_content:number_placeholders``."""
    for m in _PLACEHOLDERS.finditer(text):
        n = number(m.group("n"))
        if n > 0:
            yield m.start(), "detectable_content:number_placeholders", {"num_placeholders": n}
            return


_PS = re.compile(r"\bP\.\s?P\.\s?S\b|\bP\.\s?S\b", re.IGNORECASE)


def postscript(text: str) -> Iterator[Hit]:
    """"add a P.S." / "P.P.S" -> ``detectable_content:postscript`` with the reference's marker."""
    m = _PS.search(text)
    if m:
        # the two markers of the reference, spelled as it spells them
        marker = "P.P.S" if re.match(r"P\.\s?P", m.group(0), re.IGNORECASE) else "P.S."
        yield m.start(), "detectable_content:postscript", {"postscript_marker": marker}


_BULLETS = quantity(r"bullet(?:[\s-]*points?|s|ed\s+points?)?\b|(?:markdown\s+)?bullets?", adjectives=3)
_LISTED = re.compile(rf"\bexactly\s+(?P<n>{NUM})\s+(?:[a-z-]+\s+){{0,2}}?(?:names|items|points|ideas|tips|reasons|examples|things|ways|options|suggestions|facts|questions|steps)\b", re.IGNORECASE)


def bullets(text: str) -> Iterator[Hit]:
    """"exactly 4 bullet points" -> ``detectable_format:number_bullet_lists``."""
    for m in _BULLETS.finditer(text):
        n = number(m.group("n"))
        if n > 0 and (m.group("pre") or "").lower() in ("", "exactly", "only", "just"):
            yield m.start(), "detectable_format:number_bullet_lists", {"num_bullets": n}
            return
    if re.search(r"\bbullet", text, re.IGNORECASE):
        m = _LISTED.search(text)
        if m and number(m.group("n")) > 0:
            yield m.start(), "detectable_format:number_bullet_lists", {"num_bullets": number(m.group("n"))}


def constrained_response(text: str) -> Iterator[Hit]:
    """"My answer is yes./no./maybe." options -> ``detectable_format:constrained_response``."""
    m = re.search(r"My answer is (?:yes|no|maybe)", text, re.IGNORECASE)
    if m and re.search(r"My answer is (?:no|maybe)", text, re.IGNORECASE):
        yield m.start(), "detectable_format:constrained_response", {}


_EMPHASIS = r"highlight|italici[sz]e|italic|bold"
_HIGHLIGHT = one_of(
    rf"\b(?:{_EMPHASIS})\w*\s+(?:(?:in|of|within)\s+(?:your\s+)?(?:answer|response)\s+)?(?:{pre()}\s+)?(?P<n>{NUM})\b(?:\s*(?P<post>or\s+more))?",
    rf"(?:{pre('pre2')}\s+)?(?P<n2>{NUM})\s+(?:or\s+more\s+)?(?:[a-z-]+\s+){{0,2}}?(?:sections?|parts?|phrases?|words?|passages?|points?)\s+(?:\w+\s+){{0,4}}?(?:highlighted|with\s+markdown|italici[sz]ed)",
    rf"(?:{pre('pre3')}\s+)?(?P<n3>{NUM})\s+(?:{_EMPHASIS})\w*\s+(?:text\s+)?(?:sections?|parts?|phrases?|words?|passages?|spans?)",
)


def highlights(text: str) -> Iterator[Hit]:
    """"highlight at least 2 sections with markdown" -> ``detectable_format:number_highlighted_sections``."""
    for m in _HIGHLIGHT.finditer(text):
        n = number(group(m, "n") or "")
        if n > 0:
            yield m.start(), "detectable_format:number_highlighted_sections", {"num_highlights": n}
            return
    # "highlight some words, like *this*": at least one
    m = re.search(rf"\b(?:{_EMPHASIS})\w*\b", text, re.IGNORECASE)
    if m and re.search(r"(?<![*\w])\*[^*\s][^*\n]*\*(?!\*)", text):
        yield m.start(), "detectable_format:number_highlighted_sections", {"num_highlights": 1}


_SPLITER = re.compile(r"\b([A-Z][A-Za-z]+)\s+(?:X\b|1\b)")
_SECTIONS = quantity(r"sections?|parts?|paragraphs?|days?|chapters?|acts?|scenes?|advertisements?", adjectives=1)


def multiple_sections(text: str) -> Iterator[Hit]:
    """"5 sections, mark each with SECTION X" -> ``detectable_format:multiple_sections``."""
    for sm in _SPLITER.finditer(text):
        context = text[max(0, sm.start() - 80) : sm.start()]
        if not re.search(r"\b(?:mark|label|start|begin|note|noted|marked|labeled|labelled|indicate|named|titled|sections?)\w*\b", context, re.IGNORECASE):
            continue
        spliter = sm.group(1)
        if spliter.lower() == "paragraph" and spliter != "PARAGRAPH":
            continue
        if text[max(0, sm.start() - 1) : sm.start()] == "[" or re.match(r"[^\n]*\n\s*\*\*\*", text[sm.end() :]):
            continue  # a "[Section 1: ...]\n***" template: paragraphs, not sections
        enumerated = [int(x) for x in re.findall(rf"\b{re.escape(spliter)}\s+(\d+)", text)]
        counts = [(m.start(), number(m.group("n"))) for m in _SECTIONS.finditer(text) if (m.group("pre") or "").lower() in ("", "exactly", "at least", "only", "just")]
        counts = [(p, n) for p, n in counts if n > 1 and p < sm.start()]
        if counts:
            n = counts[-1][1]
        else:
            n = max(enumerated) if len(enumerated) > 1 else 0
        if n > 0:
            yield sm.start(), "detectable_format:multiple_sections", {"section_spliter": spliter, "num_sections": n}
            return


_JSON = re.compile(r"\b(?:in|as|using|into|with|is|be|of)\s+(?:a\s+|the\s+|valid\s+|proper\s+)*JSON\b(?!\s+(?:file|schema)s?\b)|\bJSON\s+(?:format|block|object|output|structure|form)|wrap\w*\s+(?:\w+\s+){0,4}?(?:in|with|inside)\s+JSON|JSON\s+only", re.IGNORECASE)


def json_format(text: str) -> Iterator[Hit]:
    """"wrap the whole output in JSON" -> ``detectable_format:json_format``."""
    m = _JSON.search(text)
    if m:
        yield m.start(), "detectable_format:json_format", {}


def title(text: str) -> Iterator[Hit]:
    """"a title in double angular brackets, <<title>>" -> ``detectable_format:title``."""
    m = re.search(r"<<[^<>\n]*>>|double\s+angul?ar\s+brackets|double\s+angle\s+brackets", text, re.IGNORECASE)
    if m:
        yield m.start(), "detectable_format:title", {}

