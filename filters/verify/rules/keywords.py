"""Rules for ``keywords:*``: words and letters that must or must not appear, and how often.

Keywords are read from quotes when the text quotes them, else from a plain ``a, b and
c`` list; a list that is not plain words yields nothing. A keyword followed by a count
("'x' should appear 3 times") is a frequency, not an existence constraint.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from filters.verify.rules.quantities import (
    NUM,
    bounds,
    group,
    number,
    post,
    pre,
    relation,
    relation_of,
)
from filters.verify.rules.spans import (
    NEGATION,
    Hit,
    one_of,
    quoted,
    sentence,
    word_list,
)

__all__ = ["existence", "forbidden_words", "frequency", "letter_frequency"]

_KEYWORDS = one_of(
    r"\b(?:include|includes|including|contain|contains|containing|use|using|mention|mentioning|incorporate|with|have|has|feature)\s+(?:(?:the|these|following|specific|all|of)\s+)*key\s*(?:words?|terms?|phrases?)\b\s*(?P<list>.*)",
    r"\b(?:include|includes|including|contain|contains|containing|mention|mentioning|incorporate|has|have|use|using)\s+(?:(?:the|these|following)\s+)*(?:words?|terms?|phrases?|lines?)\s+(?P<list2>[\"“'‘].*)",
    r"\b(?:include|including|contain|containing|mention|use)\s+(?:(?:the|these|following)\s+)*words\s+(?P<list3>[A-Za-z][^.\n]*)",
    r"\bmention\s+(?P<list4>[\"“'‘].*)",
)
_THEN_COUNT = re.compile(r"^\W*(?:should|must|has\s+to|needs\s+to)?\s*(?:appear|appears|be\s+used|occur|occurs)?\s*(?:for\s+)?(?:at\s+least|at\s+most|less|more|fewer|exactly|\d+|once|twice|thrice|one|two|three|four|five|six|seven|eight|nine|ten|each\s+time)\b", re.IGNORECASE)


def _keyword_list(span: str) -> tuple[list[str], int]:
    """(keywords, length of the text they took) for the text after "keywords"."""
    words = word_list(span)
    if not words:
        return [], 0
    last = words[-1]
    end = span.find(last) + len(last)
    if span[end : end + 1] in "\"”'’`":
        end += 1
    return [w.strip(" ,.;:").lower() for w in words], end


def existence(text: str) -> Iterator[Hit]:
    """"include the keywords 'a' and 'b'" -> ``keywords:existence``."""
    for m in _KEYWORDS.finditer(text):
        start, _ = sentence(text, m.start())
        if NEGATION.search(text[start : m.start()]):
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
    return rf"(?:{pre('pre' + s)}\s+)?(?P<n{s}>{NUM}|once|twice|thrice)\s*(?:{post('post' + s)}\s*)?(?:times?\b)?(?:\s+(?P<postx{s}>or\s+more|or\s+less|or\s+fewer|at\s+least|at\s+most))?"


_APPEAR = r"(?:(?:should|must|has\s+to|needs\s+to|will|to|is\s+to)\s+)?(?:(?:appear|appears|be\s+used|is\s+used|be\s+mentioned|be\s+included|occur|occurs|show\s+up|shows\s+up|be\s+repeated)\s+)?(?:(?:in\s+(?:your|the)\s+\w+(?:\s+\w+)?|for|exactly)\s+)*"
_FREQUENCY = one_of(
    rf"\b(?:(?:key)?word|term|name\s+of\s+the\s+\w+)\s+(?P<kw>{_KW})\s+{_APPEAR}(?:(?P<a>{NUM})\s*(?:-|to|or)\s*(?P<b>{NUM})\s+times|{_times_q()})",
    rf"\b(?:use|mention|include|includes|including|repeat|say|write)\s+(?:the\s+(?:key)?word\s+)?(?P<kw2>{_KW})\s+(?:(?:in\s+(?:your|the)\s+\w+|for)\s+)?{_times_q(2)}",
)
_STOPWORDS = frozenset({"letter", "letters", "word", "words", "the", "a", "an", "it", "this", "that", "of", "in", "with", "all", "capital"})


def frequency(text: str) -> Iterator[Hit]:
    """"the word 'x' should appear at least 3 times" -> ``keywords:frequency``."""
    for m in _FREQUENCY.finditer(text):
        raw = m.group("kw") or m.group("kw2")
        kw = raw.strip("\"“”'‘’").lower()
        if (raw == kw and kw in _STOPWORDS) or not re.search(r"times?\b|once|twice|thrice", m.group(0), re.IGNORECASE):
            continue
        if m.group("a"):
            ab = bounds(m)
            if ab:
                yield m.start(), "keywords:frequency", {"keyword": kw, "frequency": ab[0], "relation": "at least"}
                yield m.start(), "keywords:frequency", {"keyword": kw, "frequency": ab[1] + 1, "relation": "less than"}
            continue
        n = number(group(m, "n") or "")
        rel = relation(group(m, "pre"), n, group(m, "post") or group(m, "postx")) if n >= 0 else None
        if rel is not None:
            yield m.start(), "keywords:frequency", {"keyword": kw, "frequency": rel[1], "relation": rel[0]}


_NOT = r"do\s+not|don't|does\s+not|doesn't|never|avoid|without|refrain\s+from|not|must\s+not|cannot|can't|should\s+not|shouldn't|exclude|excluding"
_VERBS = r"use|using|include|including|mention|mentioning|say|saying|contain|containing|write|writing|to|any\s+of|any|the|following|of|these|such\s+as|like"
_FORBIDDEN = one_of(
    rf"\b(?:{_NOT})\s+(?:(?:{_VERBS})\s+)*key\s*words?\b\s*(?:(?:such\s+as|like)\s+)?(?P<list>.*)",
    rf"\b(?:{_NOT})\s+(?:(?:{_VERBS}|\w+)\s+){{0,4}}?(?:words?|terms?)\s+(?:(?:such\s+as|like)\s+)?(?P<list2>.*)",
    rf"\b(?:{_NOT})\s+(?:(?:{_VERBS})\s+)+(?P<list3>[\"“'‘].*)",
    r"(?<!include\s)(?<!includes\s)(?<!contain\s)(?<!the\s)\b(?:the\s+)?(?:key)?(?:words?|terms?)\s+(?P<list4>[\"“'‘][^\"”'’\n]+[\"”'’](?:,?\s*(?:and\s+|or\s+)?[\"“'‘][^\"”'’\n]+[\"”'’]){0,5})\s+(?:should|must|may|can|is|are|will|does|do)\s*(?:not|never|n't)\b",
    r"(?<!include\s)(?<!includes\s)(?<!contain\s)(?<!the\s)\b(?:the\s+)?(?:key)?(?:words|terms)\s+(?P<list6>[A-Za-z]+(?:(?:,\s*|\s+)(?:and\s+|or\s+)?[A-Za-z]+){1,5})\s+(?:should|must|may|can|will)\s*(?:not|never|n't)\s+(?:be|appear|show)\b",
    r"\b(?:the\s+)?(?:key)?word\s+(?P<list7>[A-Za-z]+)\s+(?:doesn't|does\s+not|should\s+not|shouldn't|must\s+not|cannot|can't|will\s+not|won't)\s+(?:appear|be\s+used|be\s+included|show)",
    r"\b(?:do\s+not|don't|never)\s+(?:mention|use|say|include)\s+(?P<list5>[A-Za-z]+(?:(?:,\s*|\s+)(?:and\s+|or\s+)?[A-Za-z]+){0,5})\s+(?:in\s+(?:your|the)|anywhere|at\s+all)",
)


def forbidden_words(text: str) -> Iterator[Hit]:
    """"do not include the words 'a' or 'b'" -> ``keywords:forbidden_words``."""
    for m in _FORBIDDEN.finditer(text):
        span = next(g for g in (m.group("list"), m.group("list2"), m.group("list3"), m.group("list4"), m.group("list5"), m.group("list6"), m.group("list7")) if g is not None).split("\n")[0]
        if m.group("list4") is not None:
            words = quoted(span)
        elif m.group("list5") is not None or m.group("list6") is not None or m.group("list7") is not None:
            words = [w for w in re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+", span) if w]
        else:
            words = word_list(span)
        words = [w.strip(" ,.;:").lower() for w in words]
        if words and all(words) and not any(w in _STOPWORDS or w in ("any", "comma", "commas", "capital", "your", "letters") for w in words) and not re.search(r"capital|comma|letter", span[:30], re.IGNORECASE):
            yield m.start(), "keywords:forbidden_words", {"forbidden_words": words}
            return


_LETTER = re.compile(rf"\bletters?\s+[\"“'‘]?(?P<l>[A-Za-z])[\"”'’]?(?=[\s,.])(?P<mid>[^.\n]{{0,60}}?)\b{_times_q()}", re.IGNORECASE)
_NO_LETTER = re.compile(rf"(?:{_NOT}|no)\s+(?:(?:use|using|include|including|contain|containing|the|any|of|to)\s+)*(?:the\s+)?letters?\s+[\"“'‘]?(?P<l>[A-Za-z])\b", re.IGNORECASE)
_SYMBOLS = {"exclamation mark": "!", "exclamation point": "!", "hashtag": "#", "question mark": "?", "semicolon": ";"}
_SYMBOL = re.compile(rf"(?:{pre()}\s+)?(?P<n>{NUM})\s*(?:{post()}\s*)?\s+(?P<sym>exclamation\s+marks?|exclamation\s+points?|hashtags?|question\s+marks?|semicolons?)", re.IGNORECASE)


def letter_frequency(text: str) -> Iterator[Hit]:
    """"the letter q at least 5 times", "no letter e", "2 exclamation marks" -> ``keywords:letter_frequency``."""
    for m in _LETTER.finditer(text):
        rel = relation_of(m)
        if rel is None or not re.search(r"times?\b|once|twice|thrice", m.group(0), re.IGNORECASE):
            continue
        start = sentence(text, m.start())[0]
        if rel[0] == "at least" and re.search(rf"\b(?:{_NOT})\s+(?:using\s+|use\s+)?(?:the\s+)?$", text[start : m.start()], re.IGNORECASE):
            rel = ("less than", rel[1])  # "avoid using the letter i more than twice": at most 2
        yield m.start(), "keywords:letter_frequency", {"letter": m.group("l").lower(), "let_frequency": rel[1], "let_relation": rel[0]}
        return
    for m in _NO_LETTER.finditer(text):
        yield m.start(), "keywords:letter_frequency", {"letter": m.group("l").lower(), "let_frequency": 1, "let_relation": "less than"}
        return
    for m in _SYMBOL.finditer(text):
        sym = re.sub(r"s$", "", re.sub(r"\s+", " ", m.group("sym").lower()))
        rel = relation_of(m)
        if rel is not None:
            yield m.start(), "keywords:letter_frequency", {"letter": _SYMBOLS[sym], "let_frequency": rel[1], "let_relation": rel[0]}
            return
