"""Constraint extraction (ACT, methods.md 4.1): free-form instructions -> typed IFEval constraints.

ACT's verifiers need each prompt's constraints as ``(instruction_id, kwargs)`` pairs. The
ids are those of the IFEval registry (:data:`filters.ifeval.CHECKERS`) and every extracted
pair is validated there (:func:`validate_constraint`), so whatever this module emits can be
verified by :class:`filters.constraint_verify.VerifyConstraints` without a surprise.

Extraction is rules first: one small regex rule per IFEval id, written for the template
phrasings of google-research ``instructions.py`` and their common paraphrases ("in less
than 300 words", "do not use any commas", "wrap your entire response with double quotation
marks", ...). Rules aim at precision: a rule that cannot read a value (which word, how
many) emits nothing rather than a guess. Figures on IFEval's 541 prompts are in
``bench/constraint_extraction.py``. The :class:`ExtractConstraints` stage can hand rows
where no rule fired to an LLM with JSON-schema output (:mod:`filters.constraint_extract_llm`).

Relations follow the reference's two (``"less than"`` / ``"at least"``), so "at most 150
words" becomes ``less than 151`` and "more than 30 sentences" ``at least 31``, as the
IFEval annotations store them.

>>> [(c.instruction_id, c.kwargs) for c in extract_constraints("Write a poem. Do not use any commas and answer with at most 50 words.")]
[('punctuation:no_comma', {}), ('length_constraints:number_words', {'relation': 'less than', 'num_words': 51})]
"""
from __future__ import annotations

import bisect
import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Literal, NamedTuple

import pyarrow as pa

from pipelines.errors import ConfigError, ParseError
from pipelines.stage import set_column, split_by_reason
from synth.llm_stage import LLMStage

__all__ = ["LANGUAGES", "Constraint", "ExtractConstraints", "constraints_to_columns", "extract_constraints", "validate_constraint"]


class Constraint(NamedTuple):
    """One typed constraint: an IFEval instruction id and its checker kwargs."""

    instruction_id: str
    kwargs: dict[str, Any]


# ISO 639-1 codes as langdetect (the IFEval language checker) returns them.
LANGUAGES: dict[str, str] = {
    "afrikaans": "af", "albanian": "sq", "arabic": "ar", "bengali": "bn", "bangla": "bn", "bulgarian": "bg",
    "catalan": "ca", "chinese": "zh-cn", "croatian": "hr", "czech": "cs", "danish": "da", "dutch": "nl",
    "english": "en", "estonian": "et", "farsi": "fa", "filipino": "tl", "finnish": "fi", "french": "fr",
    "german": "de", "greek": "el", "gujarati": "gu", "hebrew": "he", "hindi": "hi", "hungarian": "hu",
    "indonesian": "id", "italian": "it", "japanese": "ja", "kannada": "kn", "korean": "ko", "latvian": "lv",
    "lithuanian": "lt", "macedonian": "mk", "malayalam": "ml", "marathi": "mr", "nepali": "ne", "norwegian": "no",
    "persian": "fa", "polish": "pl", "portuguese": "pt", "punjabi": "pa", "romanian": "ro", "russian": "ru",
    "slovak": "sk", "slovenian": "sl", "somali": "so", "spanish": "es", "swahili": "sw", "swedish": "sv",
    "tagalog": "tl", "tamil": "ta", "telugu": "te", "thai": "th", "turkish": "tr", "ukrainian": "uk",
    "urdu": "ur", "vietnamese": "vi", "welsh": "cy",
}
_LANG_CODES = frozenset(LANGUAGES.values()) | {"zh-tw"}

# -- validation ------------------------------------------------------------------------

_PROBE = "Probe text."


def validate_constraint(instruction_id: str, kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """The kwargs of a constraint, checked by the IFEval registry; ``ConfigError`` if invalid.

    Names are checked by :func:`filters.ifeval.bind` (unknown id, unknown or missing kwarg);
    values by running the checker once on a probe text, since each checker validates its
    kwargs (counts, relations, regex keywords) before it looks at the response. Language
    codes must be ones langdetect can return, or the check could never pass.

    >>> validate_constraint("length_constraints:number_words", {"num_words": 50, "relation": "less than"})
    {'num_words': 50, 'relation': 'less than'}
    >>> validate_constraint("length_constraints:number_words", {"num_words": 50, "relation": "under"})
    Traceback (most recent call last):
    ...
    pipelines.errors.ConfigError: kwarg 'relation' must be 'less than' or 'at least', got 'under'
    """
    from filters.ifeval import bind

    if not isinstance(kwargs, dict) and kwargs is not None:
        msg = f"kwargs of {instruction_id!r} must be a mapping, got {type(kwargs).__name__}"
        raise ConfigError(msg)
    from filters.ifeval.kwargs import compare, count

    checker, given = bind(instruction_id, kwargs)
    if instruction_id == "language:response_language":
        if given.get("language") not in _LANG_CODES:
            msg = f"kwarg 'language' must be an ISO 639-1 code langdetect returns, got {given.get('language')!r}"
            raise ConfigError(msg)
    # These two tokenize with nltk (seconds to import): the same kwarg checks, without the text.
    elif instruction_id == "length_constraints:number_sentences":
        compare(0, count(given["num_sentences"], "num_sentences"), given["relation"])
    elif instruction_id == "change_case:capital_word_frequency":
        compare(0, count(given["capital_frequency"], "capital_frequency", minimum=None), given["capital_relation"], "capital_relation")
    elif not instruction_id.startswith("change_case:english_"):
        checker(_PROBE, prompt=_PROBE, **given)
    return given


# -- numbers and relations ----------------------------------------------------------------

_NUMBERS = {
    "zero": 0, "a single": 1, "single": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "a hundred": 100, "one hundred": 100,
    "hundred": 100, "a dozen": 12,
}
_TIMES = {"once": 1, "twice": 2, "thrice": 3}
_TENS = r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[\s-](?:one|two|three|four|five|six|seven|eight|nine)\b"
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+|" + _TENS + "|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + r")"
_AT_LEAST = r"at\s+least|no\s+less\s+than|no\s+fewer\s+than|not\s+less\s+than|not\s+fewer\s+than|a\s+minimum\s+of|minimum\s+of|minimum"
_MORE = r"more\s+than|over|greater\s+than|in\s+excess\s+of|exceeding|above"
_LESS = r"less\s+than|fewer\s+than|under|below"
_AT_MOST = r"at\s+most|no\s+more\s+than|not\s+more\s+than|a\s+maximum\s+of|maximum\s+of|maximum|up\s+to|no\s+longer\s+than"


def _pre(name: str = "pre") -> str:
    return rf"(?P<{name}>{_AT_LEAST}|{_MORE}|{_LESS}|{_AT_MOST}|exactly|only|just)"


def _post(name: str = "post") -> str:
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
def _quantity(unit: str, *, adjectives: int = 2) -> re.Pattern[str]:
    """``[pre] N [post] [adjectives] unit [post]``: "at least 300 words", "300+ word", "6 or more sentences"."""
    adj = rf"(?:[a-z'-]+\s+){{0,{adjectives}}}?" if adjectives else ""
    return re.compile(
        rf"(?:{_pre()}\s+(?:a\s+total\s+of\s+)?)?(?P<n>{_NUM})\s*(?:{_post()}\s*)?[\s-]*{adj}(?P<unit>{unit})\b(?:\s+(?P<post2>or\s+more|or\s+less|or\s+fewer|at\s+least|at\s+most|minimum|maximum))?",
        re.IGNORECASE,
    )


def _group(m: re.Match[str], prefix: str) -> str | None:
    """The first set group named ``prefix`` or ``prefix<digit>`` (alternatives of one pattern)."""
    return next((v for k, v in m.groupdict().items() if v is not None and re.fullmatch(rf"{prefix}\d*", k)), None)


def _relation_of(m: re.Match[str]) -> tuple[str, int] | None:
    n = number(_group(m, "n") or "")
    if n < 0:
        return None
    return relation(_group(m, "pre"), n, _group(m, "post"))


# -- text helpers --------------------------------------------------------------------------

_SENT_END = re.compile(r"(?<=[.!?])\s+(?=\S)|\n")


@functools.lru_cache(maxsize=64)
def _boundaries(text: str) -> tuple[list[int], list[int]]:
    ends = [(m.start(), m.end()) for m in _SENT_END.finditer(text)]
    return [e for _, e in ends], [s for s, _ in ends]


def _sentence(text: str, pos: int) -> tuple[int, int]:
    """Bounds of the sentence around ``pos`` (cut at ``.!?`` + space, or a newline)."""
    starts, stops = _boundaries(text)
    i = bisect.bisect_right(starts, pos)
    j = bisect.bisect_left(stops, pos)
    return (starts[i - 1] if i else 0), (stops[j] if j < len(stops) else len(text))


_QUOTED = re.compile(r"\"([^\"\n]+)\"|“([^”\n]+)”|”([^\"”\n]+)[\"”]|'([^'\n]+)'|‘([^’\n]+)’|`([^`\n]+)`")


def _quoted(span: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(span)]


_LIST_STOP = re.compile(r"[.;:!?\n(]|\s(?:in|to|within|throughout|anywhere|from|for|at|when|while|as|if|so|but|because|should|must|and\s+(?:do|make|use|be|also|include|avoid|don't|never|not|write|your|the\s+\w+\s+should|it)|also|please|at\s+all)\b", re.IGNORECASE)
_WORD_ITEM = re.compile(r"^[A-Za-z][A-Za-z'-]*$")


def _word_list(span: str) -> list[str]:
    """Keywords from the text after "keywords": quoted items if any, else a plain ``a, b and c``."""
    span = span.lstrip(" :")
    span = re.sub(r"^\[(.*?)\]", r"\1", span)
    if span[:1] in "\"“”'‘`":
        end = re.search(r"[.;!?\n](?=\s|$)|\s(?:in|to|within|anywhere|from|should|must|at\s+least|at\s+most|less|more|are|is)\b", _strip_quoted(span))
        return _quoted(span[: end.start()] if end else span)
    stop = _LIST_STOP.search(span)
    head = span[: stop.start()] if stop else span
    items = [w.strip(" '\"") for w in re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+|/", head) if w.strip()]
    return items if items and all(_WORD_ITEM.match(w) for w in items) else []


def _strip_quoted(span: str) -> str:
    """``span`` with quoted stretches blanked out, positions kept."""
    return _QUOTED.sub(lambda m: " " * len(m.group(0)), span)


# -- rules ---------------------------------------------------------------------------------
# Each yields (position, id, kwargs). Positions order the output as the text reads.

Hit = tuple[int, str, dict[str, Any]]

_COMMA = re.compile(r"\bcommas?\b|\bcomma(?=[-\s]free)|\(,\)", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:no|not|cannot|never|without|refrain|avoid|avoiding|nor|free|forbidden|prohibited|zero|none|ban|banned|omit|exclude)\b|n't\b", re.IGNORECASE)
_NEG_AFTER = re.compile(r"^[\s\"'),]*(?:(?:is|are|should|must|may|can)\s+(?:not|never|be\s+avoided)|(?:is|are)\s+(?:not\s+allowed|forbidden|prohibited|banned)|are\s+off|[-\s]free)", re.IGNORECASE)


def _no_comma(text: str) -> Iterator[Hit]:
    for m in _COMMA.finditer(text):
        start, end = _sentence(text, m.start())
        before, after = text[start : m.start()], text[m.end() : end]
        if re.search(r"separated\s+by|separate\w*\s+(?:\w+\s+)?(?:with|by)|comma-separated", before[-40:] + m.group(0) + after[:20], re.IGNORECASE):
            continue
        if _NEGATION.search(before) or _NEG_AFTER.match(after):
            yield m.start(), "punctuation:no_comma", {}
            return


@functools.cache
def _range(unit: str, *, adjectives: int = 2) -> re.Pattern[str]:
    """"20 to 25 sentences", "5 or 6 sentences", "sentences ... in the range of 40 to 60"."""
    adj = rf"(?:[a-z'-]+\s+){{0,{adjectives}}}?"
    return re.compile(
        rf"(?:between\s+|from\s+)?(?P<a>{_NUM})\s*(?:-|–|to|and|or)\s*(?P<b>{_NUM})\s+{adj}(?:{unit})\b"
        rf"|\b(?:{unit})\b[^.\n]{{0,60}}?(?:between|range\s+of|from)\s+(?P<a2>{_NUM})\s*(?:-|–|to|and)\s*(?P<b2>{_NUM})\b",
        re.IGNORECASE,
    )


def _bounds(m: re.Match[str]) -> tuple[int, int] | None:
    a, b = number(_group(m, "a") or ""), number(_group(m, "b") or "")
    return (a, b) if 0 <= a <= b else None


def _count_hits(text: str, unit: str, iid: str, key: str, rel_key: str = "relation", skip: Any = None) -> Iterator[Hit]:
    """Hits for "[relation] N <unit>" and "N to M <unit>" (two hits, IFEval's way to say a range)."""
    taken: list[tuple[int, int]] = []
    for m in _range(unit).finditer(text):
        bounds = _bounds(m)
        if bounds and not (skip and skip(text, m)):
            taken.append(m.span())
            yield m.start(), iid, {rel_key: "at least", key: bounds[0]}
            yield m.start(), iid, {rel_key: "less than", key: bounds[1] + 1}
    for m in _quantity(unit).finditer(text):
        if any(a <= m.start() < b for a, b in taken) or (skip and skip(text, m)) or _per_item(text, m.start()):
            continue
        n = number(m.group("n"))
        if (m.group("pre") or "").lower() == "exactly" and n > 0:
            yield m.start(), iid, {rel_key: "at least", key: n}
            yield m.start(), iid, {rel_key: "less than", key: n + 1}
            continue
        rel = _relation_of(m)
        if rel is not None:
            yield m.start(), iid, {rel_key: rel[0], key: rel[1]}
    # "the total number of words in your response should be 250 or more"
    for m in re.finditer(rf"\bnumber\s+of\s+(?:{unit})\b[^.\n]{{0,40}}?\b(?:be|is)\s+(?:{_pre()}\s+)?(?P<n>{_NUM})\s*(?:{_post()})?", text, re.IGNORECASE):
        rel = _relation_of(m)
        if rel is not None and not (skip and skip(text, m)):
            yield m.start(), iid, {rel_key: rel[0], key: rel[1]}


def _per_item(text: str, pos: int) -> bool:
    """"Each line should contain exactly one sentence": a count per part, not in total."""
    return bool(re.search(r"\b(?:each|every|per)\s+\w+\s+(?:\w+\s+){0,3}$", text[_sentence(text, pos)[0] : pos], re.IGNORECASE))


def _not_plain_words(text: str, m: re.Match[str]) -> bool:
    """"words in all capital letters" and "keywords" are other constraints."""
    end = _sentence(text, m.start())[1]
    return bool(re.search(r"capital|all[\s-]caps|upper\s*case|\bcaps\b|\bitalic|highlight", text[m.start() : end], re.IGNORECASE)) or bool(re.search(r"key$", text[max(0, m.start() - 3) : m.start()], re.IGNORECASE))


def _lengths(text: str) -> Iterator[Hit]:
    yield from _count_hits(text, r"words?", "length_constraints:number_words", "num_words", skip=_not_plain_words)
    yield from _count_hits(text, r"sentences?", "length_constraints:number_sentences", "num_sentences")


_PARAGRAPHS = _quantity(r"paragraphs?", adjectives=1)
_PARTS = _quantity(r"paragraphs?|sections?|parts?|stanzas?|steps?|chunks?|blocks?|segments?|verses?", adjectives=1)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10}
_ORD = r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|final|\d+(?:st|nd|rd|th)"
_NTH = re.compile(
    rf"(?:(?:very\s+)?(?P<ord>{_ORD})\s+paragraph|paragraph\s+(?P<k>\d+))\s+(?:must\s+|should\s+|has\s+to\s+|needs\s+to\s+|will\s+)?(?:start|begin)s?\s+with\s+(?:the\s+|a\s+)?(?:word\s+)?(?P<w>[\"“'‘]?[A-Za-z]+)"
    rf"|(?:start|begin)\s+(?:the\s+)?(?:(?:very\s+)?(?P<ord2>{_ORD})\s+paragraph|paragraph\s+(?P<k2>\d+))\s+with\s+(?:the\s+|a\s+)?(?:word\s+)?(?P<w2>[\"“'‘]?[A-Za-z]+)",
    re.IGNORECASE,
)
_DIVIDER = re.compile(r"(?<!\*)\*\*\*(?!\*)|markdown\s+divider", re.IGNORECASE)
_DIVIDER_LINE = re.compile(r"^\s*\*\*\*\s*$", re.MULTILINE)


def _exact_counts(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """(position, N) of "N <unit>" / "exactly N <unit>" (no other relation: these are exact counts)."""
    out = []
    for m in pattern.finditer(text):
        pre = (m.group("pre") or "").lower()
        n = number(m.group("n"))
        if n > 0 and pre in ("", "exactly", "only", "just", "at least"):
            out.append((m.start(), n))
    return out


def _paragraphs(text: str) -> Iterator[Hit]:
    counts = _exact_counts(_PARAGRAPHS, text)
    nth = _NTH.search(text)
    if nth and counts:
        total = counts[0][1]
        ordinal = (_group(nth, "ord") or "").lower()
        k = _group(nth, "k")
        if k:
            index = int(k)
        elif ordinal in ("last", "final"):
            index = total
        else:
            index = _ORDINALS.get(ordinal) or int(re.sub(r"\D", "", ordinal) or 0)
        word = (_group(nth, "w") or "").lstrip("\"“'‘").lower()
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


_PLACEHOLDERS = _quantity(r"placeholders?", adjectives=2)


def _placeholders(text: str) -> Iterator[Hit]:
    for m in _PLACEHOLDERS.finditer(text):
        n = number(m.group("n"))
        if n > 0:
            yield m.start(), "detectable_content:number_placeholders", {"num_placeholders": n}
            return


_PS = re.compile(r"\bP\.\s?P\.\s?S\b|\bP\.\s?S\b", re.IGNORECASE)


def _postscript(text: str) -> Iterator[Hit]:
    m = _PS.search(text)
    if m:
        # the two markers of the reference, spelled as it spells them
        marker = "P.P.S" if re.match(r"P\.\s?P", m.group(0), re.IGNORECASE) else "P.S."
        yield m.start(), "detectable_content:postscript", {"postscript_marker": marker}


_BULLETS = _quantity(r"bullet(?:[\s-]*points?|s|ed\s+points?)?\b|(?:markdown\s+)?bullets?", adjectives=3)
_LISTED = re.compile(rf"\bexactly\s+(?P<n>{_NUM})\s+(?:[a-z-]+\s+){{0,2}}?(?:names|items|points|ideas|tips|reasons|examples|things|ways|options|suggestions|facts|questions|steps)\b", re.IGNORECASE)


def _bullets(text: str) -> Iterator[Hit]:
    for m in _BULLETS.finditer(text):
        n = number(m.group("n"))
        if n > 0 and (m.group("pre") or "").lower() in ("", "exactly", "only", "just"):
            yield m.start(), "detectable_format:number_bullet_lists", {"num_bullets": n}
            return
    if re.search(r"\bbullet", text, re.IGNORECASE):
        m = _LISTED.search(text)
        if m and number(m.group("n")) > 0:
            yield m.start(), "detectable_format:number_bullet_lists", {"num_bullets": number(m.group("n"))}


def _constrained(text: str) -> Iterator[Hit]:
    m = re.search(r"My answer is (?:yes|no|maybe)", text, re.IGNORECASE)
    if m and re.search(r"My answer is (?:no|maybe)", text, re.IGNORECASE):
        yield m.start(), "detectable_format:constrained_response", {}


_EMPHASIS = r"highlight|italici[sz]e|italic|bold"
_HIGHLIGHT = re.compile(
    rf"\b(?:{_EMPHASIS})\w*\s+(?:(?:in|of|within)\s+(?:your\s+)?(?:answer|response)\s+)?(?:{_pre()}\s+)?(?P<n>{_NUM})\b(?:\s*(?P<post>or\s+more))?"
    rf"|(?:{_pre('pre2')}\s+)?(?P<n2>{_NUM})\s+(?:or\s+more\s+)?(?:[a-z-]+\s+){{0,2}}?(?:sections?|parts?|phrases?|words?|passages?|points?)\s+(?:\w+\s+){{0,4}}?(?:highlighted|with\s+markdown|italici[sz]ed)"
    rf"|(?:{_pre('pre3')}\s+)?(?P<n3>{_NUM})\s+(?:{_EMPHASIS})\w*\s+(?:text\s+)?(?:sections?|parts?|phrases?|words?|passages?|spans?)",
    re.IGNORECASE,
)


def _highlights(text: str) -> Iterator[Hit]:
    for m in _HIGHLIGHT.finditer(text):
        n = number(_group(m, "n") or "")
        if n > 0:
            yield m.start(), "detectable_format:number_highlighted_sections", {"num_highlights": n}
            return
    # "highlight some words, like *this*": at least one
    m = re.search(rf"\b(?:{_EMPHASIS})\w*\b", text, re.IGNORECASE)
    if m and re.search(r"(?<![*\w])\*[^*\s][^*\n]*\*(?!\*)", text):
        yield m.start(), "detectable_format:number_highlighted_sections", {"num_highlights": 1}


_SPLITER = re.compile(r"\b([A-Z][A-Za-z]+)\s+(?:X\b|1\b)")
_SECTIONS = _quantity(r"sections?|parts?|paragraphs?|days?|chapters?|acts?|scenes?|advertisements?", adjectives=1)


def _multiple_sections(text: str) -> Iterator[Hit]:
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


def _json(text: str) -> Iterator[Hit]:
    m = _JSON.search(text)
    if m:
        yield m.start(), "detectable_format:json_format", {}


def _title(text: str) -> Iterator[Hit]:
    m = re.search(r"<<[^<>\n]*>>|double\s+angul?ar\s+brackets|double\s+angle\s+brackets", text, re.IGNORECASE)
    if m:
        yield m.start(), "detectable_format:title", {}


def _two_responses(text: str) -> Iterator[Hit]:
    m = re.search(r"\*{6}|\b(?:six|6)\s+asterisks?(?:\s+symbols?)?\b", text, re.IGNORECASE)
    if m:
        yield m.start(), "combination:two_responses", {}


_REPEAT = re.compile(
    r"\b(?:repeat|repleat)\s+(?:(?:the|this|my|all|it|your|a|of|and|above|below|exact|exactly|entire|whole|first|itself|following|original|input|request|prompt|question|sentence|text|line|instruction|word|for|by|verbatim)\b[\s,]*){1,6}"
    r"|\brepeat\s+[\"“][^\"”]+[\"”]\s+word\s+(?:for|by)\s+word",
    re.IGNORECASE,
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
        start = _sentence(text, m.start())[0]
        while start > 0:
            prev = _sentence(text, start - 2)[0]
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


def _repeat_prompt(text: str) -> Iterator[Hit]:
    span = repeat_span(text)
    if span and span[2]:
        yield span[0], "combination:repeat_prompt", {"prompt_to_repeat": span[2]}


_FILLER = r"(?:(?:the|this|a|following|exact|exactly|same|specific|precise|phrase|sentence|question|words?|line|quote|of|saying|like|read|as)\b[\s:]*)*"
_END = re.compile(
    rf"\b(?:end|finish|conclude|close|wrap\s+up)\w*\s+(?:\w+\s+){{0,4}}?(?:with|by)\s*:?\s*{_FILLER}"
    rf"|\b(?:very\s+)?(?:last\s+(?:sentence|line|words?|phrase)|end)\s+of\s+(?:your|the)\s+(?:\w+\s+){{0,2}}?(?:should|must|has\s+to|needs\s+to)\s+(?:be|read)\s*:?\s*{_FILLER}"
    rf"|\b(?:very\s+)?last\s+(?:sentence|line|words?|phrase)\s+(?:should|must|has\s+to|needs\s+to)\s+be\s*:?\s*{_FILLER}",
    re.IGNORECASE,
)


def _end_phrase(text: str, start: int, trigger: str) -> str | None:
    rest = text[start:].lstrip(" \n")
    q = _QUOTED.match(rest)
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


def _end_checker(text: str) -> Iterator[Hit]:
    for m in _END.finditer(text):
        phrase = _end_phrase(text, m.end(), m.group(0))
        if phrase and not re.match(r"(?i)p\.\s?(?:p\.\s?)?s\b", phrase):
            yield m.start(), "startend:end_checker", {"end_phrase": phrase}
            return


_DQ = r"double[\s-]*quot\w*(?:\s+marks?)?|quotation\s+marks?|quotes"
_QUOTATION = re.compile(
    rf"(?:wrap|enclos|surround|encapsulat|contain)\w*\s+(?:\w+\s+){{0,5}}?(?:in|with|inside|within|between|by|around)\s+(?:a\s+pair\s+of\s+|a\s+set\s+of\s+|\w+\s+)?(?:{_DQ})"
    rf"|(?:{_DQ})\s+(?:should|must|need\s+to)\s+be\s+(?:placed|put|used|added)\s+around"
    rf"|(?:put|place|add|use)\s+(?:\w+\s+)?(?:{_DQ})\s+around"
    rf"|(?:in|inside|within|with|between)\s+(?:{_DQ})",
    re.IGNORECASE,
)


def _quotation(text: str) -> Iterator[Hit]:
    for m in _QUOTATION.finditer(text):
        start, end = _sentence(text, m.start())
        if re.search(r"\b(?:entire|whole|full|all|response|answer|output|reply|everything)\b", text[start:end], re.IGNORECASE) and not re.search(r"\b(?:phrase|title|word|name)s?\b\s*$", text[start : m.start()], re.IGNORECASE):
            yield m.start(), "startend:quotation", {}
            return


# -- letter case ---------------------------------------------------------------------------

_CAPS = r"capital|all[\s-]caps|\bcaps\b|upper\s*case|capitali[sz]"
_CAPS_WORDS = re.compile(rf"\b(?:words?|phrases?|terms?)\b[^.\n]*(?:{_CAPS})|(?:{_CAPS})\w*\s+(?:\w+\s+){{0,2}}(?:words?|phrases?)\b", re.IGNORECASE)
_WHOLE = re.compile(r"\b(?:entire|whole|every|all\s+(?:your\s+|of\s+the\s+|the\s+)?(?:letters|words)|all\s+letters|only)\b", re.IGNORECASE)
_COUNT = re.compile(rf"(?:{_pre()}\s+)?(?P<n>{_NUM}|once|twice|thrice)\b(?:\s*(?P<post>\+|or\s+more|or\s+less|or\s+fewer))?(?:\s+times\b)?", re.IGNORECASE)


def _caps_word_sentences(text: str) -> list[tuple[int, int]]:
    """Sentences about *some* words in capitals (a count), not the whole response."""
    out = []
    for m in _CAPS_WORDS.finditer(text):
        s = _sentence(text, m.start())
        sentence = text[s[0] : s[1]]
        if _WHOLE.search(sentence) and not re.search(r"\d|times|less|more|fewer|least|most|some|few", sentence, re.IGNORECASE):
            continue
        if s not in out:
            out.append(s)
    return out


def _caps_counts(text: str, start: int, end: int) -> list[tuple[str, int]]:
    """Relations in one sentence about capitalized words; counts next to "words"/"times" first."""
    sentence = text[start:end]
    r = _range(r"(?:such\s+)?(?:capitali[sz]ed\s+|all-caps\s+)?words?|times").search(sentence)
    if r and _bounds(r):
        a, b = _bounds(r)  # type: ignore[misc]
        return [("at least", a), ("less than", b + 1)]
    near, other = [], []
    for c in _COUNT.finditer(sentence):
        rel = _relation_of(c) if (c.group("pre") or c.group("post")) else None
        if rel is not None:
            after = sentence[c.end() : c.end() + 30]
            (near if re.match(r"\s*(?:times|(?:\w+\s+){0,2}(?:words?|phrases?)\b|\W*$)", after, re.IGNORECASE) or re.search(r"times", c.group(0)) else other).append(rel)
    return near or other


def _capital_frequency(text: str) -> Iterator[Hit]:
    hits: list[tuple[int, tuple[str, int]]] = []
    asks_some = None
    for start, end in _caps_word_sentences(text):
        counts = _caps_counts(text, start, end)
        if not counts:
            nxt = _sentence(text, end + 1) if end < len(text) else None
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
_WHOLE_UPPER = re.compile(
    r"\b(?:in|using|use|with|only|written\s+in|answer\s+in)\s+(?:all\s+|only\s+)?(?:capital\s+letters|caps|capitals|upper\s*case)"
    r"|\ball\s+(?:capital|upper\s*case)\s+letters|\ball[\s-]caps\b|\bcapitali[sz]e\s+(?:all|every)|\b(?:all|every)\s+(?:\w+\s+){0,8}?(?:capitali[sz]ed|in\s+(?:all\s+)?capital|upper\s*case)"
    r"|\bno\s+lower\s*case",
    re.IGNORECASE,
)
_UPPER = re.compile(rf"(?:{_CAPS})\w*", re.IGNORECASE)
_NEG_BEFORE = re.compile(r"(?:\b(?:no|not|never|without|any|avoid|zero|refrain)\b|n't)\W+(?:\w+\W+){0,3}$", re.IGNORECASE)


def _case(text: str) -> Iterator[Hit]:
    caps_word = _caps_word_sentences(text)
    lower = upper = None
    for m in _LOWER.finditer(text):
        if not _NEGATION.search(text[_sentence(text, m.start())[0] : m.start()]):
            lower = lower or m
    for m in _UPPER.finditer(text):
        s = _sentence(text, m.start())
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


# -- keywords ------------------------------------------------------------------------------

_KEYWORDS = re.compile(
    r"\b(?:include|includes|including|contain|contains|containing|use|using|mention|mentioning|incorporate|with|have|has|feature)\s+(?:(?:the|these|following|specific|all|of)\s+)*key\s*(?:words?|terms?|phrases?)\b\s*(?P<list>.*)"
    r"|\b(?:include|includes|including|contain|contains|containing|mention|mentioning|incorporate|has|have|use|using)\s+(?:(?:the|these|following)\s+)*(?:words?|terms?|phrases?|lines?)\s+(?P<list2>[\"“'‘].*)"
    r"|\b(?:include|including|contain|containing|mention|use)\s+(?:(?:the|these|following)\s+)*words\s+(?P<list3>[A-Za-z][^.\n]*)"
    r"|\bmention\s+(?P<list4>[\"“'‘].*)",
    re.IGNORECASE,
)
_THEN_COUNT = re.compile(r"^\W*(?:should|must|has\s+to|needs\s+to)?\s*(?:appear|appears|be\s+used|occur|occurs)?\s*(?:for\s+)?(?:at\s+least|at\s+most|less|more|fewer|exactly|\d+|once|twice|thrice|one|two|three|four|five|six|seven|eight|nine|ten|each\s+time)\b", re.IGNORECASE)


def _keyword_list(span: str) -> tuple[list[str], int]:
    """(keywords, length of the text they took) for the text after "keywords"."""
    words = _word_list(span)
    if not words:
        return [], 0
    last = words[-1]
    end = span.find(last) + len(last)
    if span[end : end + 1] in "\"”'’`":
        end += 1
    return [w.strip(" ,.;:").lower() for w in words], end


def _existence(text: str) -> Iterator[Hit]:
    for m in _KEYWORDS.finditer(text):
        start, _ = _sentence(text, m.start())
        if _NEGATION.search(text[start : m.start()]):
            continue
        span = next(g for g in (m.group("list"), m.group("list2"), m.group("list3"), m.group("list4")) if g is not None).split("\n")[0]
        words, used = _keyword_list(span)
        if m.group("list3") is not None and len(words) < 2:
            continue
        if words and not _THEN_COUNT.match(span[used:]):
            yield m.start(), "keywords:existence", {"keywords": words}
            return


_KW = r"\"[^\"\n]+\"|“[^”\n]+”|'[^'\n]+'|[A-Za-z][A-Za-z'-]*"


def _times_q(i: int = 0) -> str:
    """``[pre] N [post] times [post]``, group names suffixed with ``i`` (one pattern may hold several)."""
    s = str(i or "")
    return rf"(?:{_pre('pre' + s)}\s+)?(?P<n{s}>{_NUM}|once|twice|thrice)\s*(?:{_post('post' + s)}\s*)?(?:times?\b)?(?:\s+(?P<postx{s}>or\s+more|or\s+less|or\s+fewer|at\s+least|at\s+most))?"


_APPEAR = r"(?:(?:should|must|has\s+to|needs\s+to|will|to|is\s+to)\s+)?(?:(?:appear|appears|be\s+used|is\s+used|be\s+mentioned|be\s+included|occur|occurs|show\s+up|shows\s+up|be\s+repeated)\s+)?(?:(?:in\s+(?:your|the)\s+\w+(?:\s+\w+)?|for|exactly)\s+)*"
_FREQUENCY = re.compile(
    rf"\b(?:(?:key)?word|term|name\s+of\s+the\s+\w+)\s+(?P<kw>{_KW})\s+{_APPEAR}(?:(?P<a>{_NUM})\s*(?:-|to|or)\s*(?P<b>{_NUM})\s+times|{_times_q()})"
    rf"|\b(?:use|mention|include|includes|including|repeat|say|write)\s+(?:the\s+(?:key)?word\s+)?(?P<kw2>{_KW})\s+(?:(?:in\s+(?:your|the)\s+\w+|for)\s+)?{_times_q(2)}",
    re.IGNORECASE,
)
_STOPWORDS = frozenset({"letter", "letters", "word", "words", "the", "a", "an", "it", "this", "that", "of", "in", "with", "all", "capital"})


def _frequency(text: str) -> Iterator[Hit]:
    for m in _FREQUENCY.finditer(text):
        raw = m.group("kw") or m.group("kw2")
        kw = raw.strip("\"“”'‘’").lower()
        if (raw == kw and kw in _STOPWORDS) or not re.search(r"times?\b|once|twice|thrice", m.group(0), re.IGNORECASE):
            continue
        if m.group("a"):
            bounds = _bounds(m)
            if bounds:
                yield m.start(), "keywords:frequency", {"keyword": kw, "frequency": bounds[0], "relation": "at least"}
                yield m.start(), "keywords:frequency", {"keyword": kw, "frequency": bounds[1] + 1, "relation": "less than"}
            continue
        n = number(_group(m, "n") or "")
        rel = relation(_group(m, "pre"), n, _group(m, "post") or _group(m, "postx")) if n >= 0 else None
        if rel is not None:
            yield m.start(), "keywords:frequency", {"keyword": kw, "frequency": rel[1], "relation": rel[0]}


_NOT = r"do\s+not|don't|does\s+not|doesn't|never|avoid|without|refrain\s+from|not|must\s+not|cannot|can't|should\s+not|shouldn't|exclude|excluding"
_VERBS = r"use|using|include|including|mention|mentioning|say|saying|contain|containing|write|writing|to|any\s+of|any|the|following|of|these|such\s+as|like"
_FORBIDDEN = re.compile(
    rf"\b(?:{_NOT})\s+(?:(?:{_VERBS})\s+)*key\s*words?\b\s*(?:(?:such\s+as|like)\s+)?(?P<list>.*)"
    rf"|\b(?:{_NOT})\s+(?:(?:{_VERBS}|\w+)\s+){{0,4}}?(?:words?|terms?)\s+(?:(?:such\s+as|like)\s+)?(?P<list2>.*)"
    rf"|\b(?:{_NOT})\s+(?:(?:{_VERBS})\s+)+(?P<list3>[\"“'‘].*)"
    rf"|(?<!include\s)(?<!includes\s)(?<!contain\s)(?<!the\s)\b(?:the\s+)?(?:key)?(?:words?|terms?)\s+(?P<list4>[\"“'‘][^\"”'’\n]+[\"”'’](?:,?\s*(?:and\s+|or\s+)?[\"“'‘][^\"”'’\n]+[\"”'’]){{0,5}})\s+(?:should|must|may|can|is|are|will|does|do)\s*(?:not|never|n't)\b"
    rf"|(?<!include\s)(?<!includes\s)(?<!contain\s)(?<!the\s)\b(?:the\s+)?(?:key)?(?:words|terms)\s+(?P<list6>[A-Za-z]+(?:(?:,\s*|\s+)(?:and\s+|or\s+)?[A-Za-z]+){{1,5}})\s+(?:should|must|may|can|will)\s*(?:not|never|n't)\s+(?:be|appear|show)\b"
    rf"|\b(?:the\s+)?(?:key)?word\s+(?P<list7>[A-Za-z]+)\s+(?:doesn't|does\s+not|should\s+not|shouldn't|must\s+not|cannot|can't|will\s+not|won't)\s+(?:appear|be\s+used|be\s+included|show)"
    rf"|\b(?:do\s+not|don't|never)\s+(?:mention|use|say|include)\s+(?P<list5>[A-Za-z]+(?:(?:,\s*|\s+)(?:and\s+|or\s+)?[A-Za-z]+){{0,5}})\s+(?:in\s+(?:your|the)|anywhere|at\s+all)",
    re.IGNORECASE,
)


def _forbidden(text: str) -> Iterator[Hit]:
    for m in _FORBIDDEN.finditer(text):
        span = next(g for g in (m.group("list"), m.group("list2"), m.group("list3"), m.group("list4"), m.group("list5"), m.group("list6"), m.group("list7")) if g is not None).split("\n")[0]
        if m.group("list4") is not None:
            words = _quoted(span)
        elif m.group("list5") is not None or m.group("list6") is not None or m.group("list7") is not None:
            words = [w for w in re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+", span) if w]
        else:
            words = _word_list(span)
        words = [w.strip(" ,.;:").lower() for w in words]
        if words and all(words) and not any(w in _STOPWORDS or w in ("any", "comma", "commas", "capital", "your", "letters") for w in words) and not re.search(r"capital|comma|letter", span[:30], re.IGNORECASE):
            yield m.start(), "keywords:forbidden_words", {"forbidden_words": words}
            return


_LETTER = re.compile(rf"\bletters?\s+[\"“'‘]?(?P<l>[A-Za-z])[\"”'’]?(?=[\s,.])(?P<mid>[^.\n]{{0,60}}?)\b{_times_q()}", re.IGNORECASE)
_NO_LETTER = re.compile(rf"(?:{_NOT}|no)\s+(?:(?:use|using|include|including|contain|containing|the|any|of|to)\s+)*(?:the\s+)?letters?\s+[\"“'‘]?(?P<l>[A-Za-z])\b", re.IGNORECASE)
_SYMBOLS = {"exclamation mark": "!", "exclamation point": "!", "hashtag": "#", "question mark": "?", "semicolon": ";"}
_SYMBOL = re.compile(rf"(?:{_pre()}\s+)?(?P<n>{_NUM})\s*(?:{_post()}\s*)?\s+(?P<sym>exclamation\s+marks?|exclamation\s+points?|hashtags?|question\s+marks?|semicolons?)", re.IGNORECASE)


def _letter_frequency(text: str) -> Iterator[Hit]:
    for m in _LETTER.finditer(text):
        rel = _relation_of(m)
        if rel is None or not re.search(r"times?\b|once|twice|thrice", m.group(0), re.IGNORECASE):
            continue
        start = _sentence(text, m.start())[0]
        if rel[0] == "at least" and re.search(rf"\b(?:{_NOT})\s+(?:using\s+|use\s+)?(?:the\s+)?$", text[start : m.start()], re.IGNORECASE):
            rel = ("less than", rel[1])  # "avoid using the letter i more than twice": at most 2
        yield m.start(), "keywords:letter_frequency", {"letter": m.group("l").lower(), "let_frequency": rel[1], "let_relation": rel[0]}
        return
    for m in _NO_LETTER.finditer(text):
        yield m.start(), "keywords:letter_frequency", {"letter": m.group("l").lower(), "let_frequency": 1, "let_relation": "less than"}
        return
    for m in _SYMBOL.finditer(text):
        sym = re.sub(r"s$", "", re.sub(r"\s+", " ", m.group("sym").lower()))
        rel = _relation_of(m)
        if rel is not None:
            yield m.start(), "keywords:letter_frequency", {"letter": _SYMBOLS[sym], "let_frequency": rel[1], "let_relation": rel[0]}
            return


_LANG = r"(" + "|".join(sorted(LANGUAGES, key=len, reverse=True)) + r")"
_ADV = r"(?:(?:only|entirely|exclusively|solely|wholly|fully|completely|purely)\s+)?"
_LANGUAGE = re.compile(
    rf"\b(?:in|using|use|into)\s+{_ADV}(?:the\s+)?{_LANG}\b(?:\s+language)?(?:\s+only)?\s*,?\s+(?:and\s+)?(?:no|without)\s+other\s+languages?"
    rf"|\b(?:only|entirely|exclusively|solely|wholly|fully|completely|purely)\s+(?:in|using|use)\s+(?:the\s+)?{_LANG}\b"
    rf"|\b(?:use|using|write|respond|answer|reply)\s+only\s+(?:in\s+)?(?:the\s+)?{_LANG}\b"
    rf"|\b(?:in|using|use)\s+(?:only\s+)?(?:the\s+)?{_LANG}\s+(?:language\b|only\b)"
    rf"|\b(?:response|answer|reply|output|poem|essay|story|letter|email|text)\s+(?:\w+\s+){{0,2}}?(?:should|must|has\s+to|needs\s+to)\s+be\s+(?:written\s+)?{_ADV}in\s+(?:the\s+)?{_LANG}\b"
    rf"|\b(?:respond|answer|reply|write|written)\s+(?:\w+\s+){{0,3}}?(?:in|using)\s+(?:the\s+)?{_LANG}\s+language\b"
    rf"|\b(?:respond|reply|answer)\s+{_ADV}in\s+{_LANG}\b(?!\s+(?:and|or)\s)",
    re.IGNORECASE,
)
_LANG_WORD = re.compile(rf"\b{_LANG}\b", re.IGNORECASE)


def _language(text: str) -> Iterator[Hit]:
    found = [(m.start(), next(g for g in m.groups() if g)) for m in _LANGUAGE.finditer(text)]
    if not found:  # "Write a haiku in Italian about a yacht, no other language is allowed."
        for m in re.finditer(r"\bno\s+other\s+languages?\b", text, re.IGNORECASE):
            start, end = _sentence(text, m.start())
            names = {n.lower() for n in _LANG_WORD.findall(text[start:end])}
            if len(names) == 1:
                found.append((start, names.pop()))
    for pos, lang in found:
        code = LANGUAGES[lang.lower()]
        if code != "en":
            yield pos, "language:response_language", {"language": code}
            return


RULES = (
    _no_comma, _lengths, _paragraphs, _placeholders, _postscript, _bullets, _constrained, _highlights,
    _multiple_sections, _json, _title, _two_responses, _end_checker, _quotation, _capital_frequency, _case,
    _existence, _frequency, _forbidden, _letter_frequency, _language,
)


def extract_constraints(text: str) -> list[Constraint]:
    """Typed IFEval constraints found in ``text`` by the rules, in reading order, validated.

    The "repeat the request" instruction is read first and blanked out for the other
    rules (its "do not say any words" is not a forbidden-words constraint). Hits that
    fail :func:`validate_constraint` are dropped, as are exact repeats.

    >>> [c.instruction_id for c in extract_constraints("Write a limerick in all lowercase letters. End it with the phrase \\"Peace!\\"")]
    ['change_case:english_lowercase', 'startend:end_checker']
    """
    hits: list[Hit] = list(_repeat_prompt(text))
    body = text
    span = repeat_span(text) if hits else None
    if span:  # blank the instruction out, keep positions
        start, end, _ = span
        body = text[:start] + " " * (end - start) + text[end:]
    for rule in RULES:
        hits.extend(rule(body))
    hits.sort(key=lambda h: h[0])
    out: list[Constraint] = []
    seen: set[str] = set()
    for _, iid, kwargs in hits:
        key = json.dumps([iid, kwargs], sort_keys=True)
        if key in seen:
            continue
        try:
            validate_constraint(iid, kwargs)
        except ConfigError:
            continue
        seen.add(key)
        out.append(Constraint(iid, kwargs))
    return out


def constraints_to_columns(constraints: list[Constraint]) -> tuple[list[str], str]:
    """``instruction_id_list`` and the ``kwargs`` JSON string (a list of dicts, as IFEval stores it).

    >>> constraints_to_columns([Constraint("punctuation:no_comma", {}), Constraint("detectable_format:title", {})])
    (['punctuation:no_comma', 'detectable_format:title'], '[{}, {}]')
    """
    return [c.instruction_id for c in constraints], json.dumps([c.kwargs for c in constraints], ensure_ascii=False)


# -- the stage -----------------------------------------------------------------------------


class ExtractConstraints(LLMStage):
    """Extract typed constraints from each row's instruction (ACT's constraint extraction).

    Rules first (:func:`extract_constraints`); with ``use_llm: true`` rows where no rule
    fired go to the LLM, which answers a JSON schema listing ``{instruction_id, kwargs}``
    items (:mod:`filters.constraint_extract_llm`); its items are validated like the rules'.

    Input: ``column`` (default ``instruction``). Output: ``instruction_id_list``
    (list<string>) and ``kwargs``: a JSON **string** per row holding a list of dicts, one
    per id, exactly as IFEval's ``input_data.jsonl`` stores them (a string, because Arrow
    would otherwise widen every dict to the union of all kwarg names);
    :class:`~filters.constraint_verify.VerifyConstraints` reads either form. Also
    ``constraint_source`` (``rules`` | ``llm``).

    Rejected: ``no_constraints`` (nothing found; ``on_no_constraints: keep`` keeps the row
    with empty lists), ``parse_error:constraints`` with the raw LLM text when its output
    is invalid (``on_parse_error: fallback`` keeps the rules' result, empty, instead and
    applies the ``no_constraints`` rule), ``prompt_too_long``.

    The LLM answers with structured output: backend ``vllm`` or ``openai`` (a server that
    supports it), not ``transformers``. Without ``use_llm`` the stage loads no model and
    runs on CPU workers like any filter.
    """

    adds: ClassVar[Mapping[str, pa.DataType]] = {"instruction_id_list": pa.list_(pa.string()), "kwargs": pa.string(), "constraint_source": pa.string()}
    default_sampling: ClassVar[dict[str, Any]] = {"temperature": 0.0, "max_tokens": 512}
    version = "1"

    def __init__(
        self,
        *,
        column: str = "instruction",
        use_llm: bool = False,
        on_no_constraints: Literal["reject", "keep"] = "reject",
        on_parse_error: Literal["reject", "fallback"] = "reject",
        **llm: Any,
    ) -> None:
        super().__init__(**llm)
        if on_no_constraints not in ("reject", "keep"):
            msg = f"on_no_constraints must be 'reject' or 'keep', got {on_no_constraints!r}"
            raise ConfigError(msg)
        if on_parse_error not in ("reject", "fallback"):
            msg = f"on_parse_error must be 'reject' or 'fallback', got {on_parse_error!r}"
            raise ConfigError(msg)
        if not isinstance(use_llm, bool):
            msg = f"use_llm must be true or false, got {use_llm!r}"
            raise ConfigError(msg)
        if use_llm and self.backend == "transformers":
            msg = "use_llm needs JSON-schema structured output, which the transformers backend lacks"
            raise ConfigError(msg, hint="use backend: vllm, or an OpenAI-compatible server (backend: openai)")
        self.column, self.use_llm = column, use_llm
        self.on_no_constraints, self.on_parse_error = on_no_constraints, on_parse_error
        self.params.update(column=column, use_llm=use_llm, on_no_constraints=on_no_constraints, on_parse_error=on_parse_error)
        self.requires = {column: pa.string()}
        # Rules alone need no engine: run as a CPU stage (workers), load nothing.
        self.needs_llm = use_llm  # type: ignore[misc]

    def load(self) -> None:
        if self.use_llm:
            super().load()

    def models(self) -> dict[str, str]:
        return super().models() if self.use_llm else {}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        texts = [t or "" for t in table.column(self.column).to_pylist()]
        found = [extract_constraints(t) for t in texts]
        sources = ["rules"] * len(texts)
        reasons: list[str | None] = [None] * len(texts)
        raws: list[str | None] = [None] * len(texts)
        todo = [i for i, f in enumerate(found) if not f] if self.use_llm else []
        if todo:
            from filters.constraint_extract_llm import (
                CONSTRAINTS_SCHEMA,
                extraction_prompt,
                parse_constraints,
            )

            chats = [[{"role": "user", "content": extraction_prompt(texts[i])}] for i in todo]
            outs = self.engine_llm.chat(chats, {**self.sampling, "structured_outputs": {"json": CONSTRAINTS_SCHEMA}})
            for i, out in zip(todo, outs):
                if out.error:
                    reasons[i], raws[i] = out.error.split(":")[0], out.text
                    continue
                try:
                    found[i], sources[i] = parse_constraints(out.text), "llm"
                except ParseError:
                    if self.on_parse_error == "reject":
                        reasons[i], raws[i] = "parse_error:constraints", out.text
        for i, f in enumerate(found):
            if reasons[i] is None and not f and self.on_no_constraints == "reject":
                reasons[i] = "no_constraints"
        columns = [constraints_to_columns(f) for f in found]
        table = set_column(table, "instruction_id_list", pa.array([c[0] for c in columns], pa.list_(pa.string())))
        table = set_column(table, "kwargs", pa.array([c[1] for c in columns], pa.string()))
        table = set_column(table, "constraint_source", pa.array(sources, pa.string()))
        return split_by_reason(table, reasons, raw=raws)
