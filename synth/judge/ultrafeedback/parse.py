"""Parse UltraFeedback judge replies: pure functions that return values or raise ``ParseError``.

The rules are the reference's (``annotate_preference.py``'s ``process``, methods.md 3.2),
made strict where it was loose:

* the reply is split on ``"\\n\\n"`` and must give exactly one block per text (the
  reference asserted 4); surrounding whitespace is stripped first;
* per block, ``Rating: (.+?)\\nRationale: (.+)`` (instruction following, honesty) or
  ``Type: (.+?)\\nRationale: (.+?)\\nRating: (.+?)\\nRationale: (.+)`` (truthfulness,
  helpfulness), searched with DOTALL; the rating is the first integer in its field, or
  ``N/A`` (honesty only). Unlike the reference, a rating outside 1-5 or a Type outside 1-3
  is an error rather than a stored value.

>>> parse_aspect("Rating: 4\\nRationale: ok.\\n\\nRating: N/A\\nRationale: poem.", "honesty", 2)
[Annotation(rating=4, rationale='ok.', types=(), type_rationale=''), Annotation(rating=None, rationale='poem.', types=(), type_rationale='')]
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pipelines.errors import ParseError
from synth.judge.ultrafeedback.templates import NA_ASPECTS, TYPED_ASPECTS

RATING_RE = re.compile(r"Rating: (.+?)\nRationale: (.+)", re.DOTALL)
TYPED_RE = re.compile(r"Type: (.+?)\nRationale: (.+?)\nRating: (.+?)\nRationale: (.+)", re.DOTALL)
INT_RE = re.compile(r"\b\d+\b")
SCORE_SPLIT = "\nOverall Score: "


@dataclass(frozen=True)
class Annotation:
    """One text's rating on one aspect. ``rating`` None means ``N/A`` (honesty only)."""

    rating: int | None
    rationale: str
    types: tuple[int, ...] = ()
    type_rationale: str = ""


def split_blocks(text: str, n: int) -> list[str]:
    """One block per text: the reply split on blank lines (``"\\n\\n"``), exactly ``n``.

    >>> split_blocks("a\\n\\nb", 2)
    ['a', 'b']
    >>> split_blocks("a\\n\\nb\\n\\nc", 2)
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: expected 2 blocks separated by blank lines, got 3
    """
    blocks = text.strip().split("\n\n")
    if len(blocks) != n:
        msg = f"expected {n} blocks separated by blank lines, got {len(blocks)}"
        raise ParseError(msg, raw=text)
    return blocks


def parse_rating(field: str, *, allow_na: bool = False, low: int = 1, high: int = 5) -> int | None:
    """The first integer in a ``Rating:`` field, checked against ``low..high``; None for N/A.

    >>> parse_rating("4 (Almost There)"), parse_rating("N/A", allow_na=True)
    (4, None)
    >>> parse_rating("Excellent")
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: no integer rating in 'Excellent'
    """
    value = field.strip()
    if allow_na and value.rstrip(".").upper() == "N/A":
        return None
    found = INT_RE.findall(value)
    if not found:
        msg = f"no integer rating in {value[:40]!r}"
        raise ParseError(msg, raw=field)
    rating = int(found[0])
    if not low <= rating <= high:
        msg = f"rating {rating} outside {low}-{high}"
        raise ParseError(msg, raw=field)
    return rating


def parse_types(field: str) -> tuple[int, ...]:
    """A ``Type:`` field: the integers 1-3 it lists, or () for ``None``.

    >>> parse_types("1, 3"), parse_types("None")
    ((1, 3), ())
    """
    value = field.strip()
    if value.rstrip(".").lower() == "none":
        return ()
    found = [int(x) for x in INT_RE.findall(value)]
    if not found or any(not 1 <= t <= 3 for t in found):
        msg = f"Type must list identifiers 1-3 or say None, got {value[:40]!r}"
        raise ParseError(msg, raw=field)
    return tuple(found)


def parse_block(block: str, aspect: str) -> Annotation:
    """One text's block: ``Rating``/``Rationale``, with ``Type``/``Rationale`` first for the
    typed aspects.

    >>> parse_block("#### Output for Text 1\\nType: 1, 2\\nRationale: clear.\\nRating: 5\\nRationale: great.", "helpfulness")
    Annotation(rating=5, rationale='great.', types=(1, 2), type_rationale='clear.')
    """
    if aspect in TYPED_ASPECTS:
        m = TYPED_RE.search(block)
        if m is None:
            msg = f"{aspect} block lacks 'Type: ...\\nRationale: ...\\nRating: ...\\nRationale: ...'"
            raise ParseError(msg, raw=block)
        return Annotation(parse_rating(m.group(3)), m.group(4).strip(), parse_types(m.group(1)), m.group(2).strip())
    m = RATING_RE.search(block)
    if m is None:
        msg = f"{aspect} block lacks 'Rating: ...\\nRationale: ...'"
        raise ParseError(msg, raw=block)
    return Annotation(parse_rating(m.group(1), allow_na=aspect in NA_ASPECTS), m.group(2).strip())


def parse_aspect(text: str, aspect: str, n: int) -> list[Annotation]:
    """All ``n`` annotations of a reply, in the order the texts were shown."""
    try:
        return [parse_block(b, aspect) for b in split_blocks(text, n)]
    except ParseError as exc:
        raise ParseError(str(exc), raw=text) from None


def parse_aspect_json(text: str, aspect: str, n: int) -> list[Annotation]:
    """A structured-output reply (``{"annotations": [{rating, rationale, ...}, ...]}``).

    >>> parse_aspect_json('{"annotations": [{"rating": "N/A", "rationale": "poem"}]}', "honesty", 1)
    [Annotation(rating=None, rationale='poem', types=(), type_rationale='')]
    >>> parse_aspect_json('{"annotations": [{"rating": 3, "rat', "honesty", 1)
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: reply is not valid JSON: Unterminated string starting at: line 1 column 32 (char 31)
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"reply is not valid JSON: {exc}"
        raise ParseError(msg, raw=text) from None
    items = obj.get("annotations") if isinstance(obj, dict) else None
    if not isinstance(items, list) or len(items) != n:
        msg = f"expected 'annotations' with {n} entries, got {len(items) if isinstance(items, list) else type(items).__name__}"
        raise ParseError(msg, raw=text)
    out = []
    for it in items:
        if not isinstance(it, dict) or "rating" not in it or "rationale" not in it:
            msg = "an annotation lacks 'rating' or 'rationale'"
            raise ParseError(msg, raw=text)
        rating = parse_rating(str(it["rating"]), allow_na=aspect in NA_ASPECTS)
        types: tuple[int, ...] = ()
        if aspect in TYPED_ASPECTS:
            raw_types = it.get("type")
            if not isinstance(raw_types, list) or any(not isinstance(t, int) or not 1 <= t <= 3 for t in raw_types):
                msg = f"'type' must be a list of identifiers 1-3, got {raw_types!r}"
                raise ParseError(msg, raw=text)
            types = tuple(raw_types)
        out.append(Annotation(rating, str(it["rationale"]).strip(), types, str(it.get("type_rationale", "")).strip()))
    return out


def parse_score(field: str, *, low: int = 1, high: int = 10) -> float:
    """An overall score: the text before the first ``.``, ``x/10`` read as x (the reference).

    >>> parse_score("8"), parse_score("7/10"), parse_score("9. Good")
    (8.0, 7.0, 9.0)
    >>> parse_score("11")
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: overall score 11 outside 1-10
    """
    head = field.strip().split(".")[0].strip()
    if "/" in head:
        head = head.split("/")[0].strip()
    found = INT_RE.findall(head)
    if not found:
        msg = f"no overall score in {field.strip()[:40]!r}"
        raise ParseError(msg, raw=field)
    score = int(found[0])
    if not low <= score <= high:
        msg = f"overall score {score} outside {low}-{high}"
        raise ParseError(msg, raw=field)
    return float(score)


def parse_critique(text: str) -> tuple[str, float]:
    """Feedback and overall score: the reply split on ``"\\nOverall Score: "``, exactly once.

    >>> parse_critique("Too short; add an example.\\nOverall Score: 6")
    ('Too short; add an example.', 6.0)
    >>> parse_critique("Fine.")
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: expected one '\\nOverall Score: ' line, found 0
    """
    parts = text.strip().split(SCORE_SPLIT)
    if len(parts) != 2:
        msg = f"expected one '\\nOverall Score: ' line, found {len(parts) - 1}"
        raise ParseError(msg, raw=text)
    critique = parts[0].strip()
    if critique.startswith("### Feedback"):
        critique = critique[len("### Feedback"):].strip()
    return critique, parse_score(parts[1])


def parse_critique_json(text: str) -> tuple[str, float]:
    """A structured-output critique ``{"feedback": ..., "overall_score": n}``.

    >>> parse_critique_json('{"feedback": "ok", "overall_score": 7}')
    ('ok', 7.0)
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"reply is not valid JSON: {exc}"
        raise ParseError(msg, raw=text) from None
    if not isinstance(obj, dict) or "feedback" not in obj or "overall_score" not in obj:
        msg = "expected an object with 'feedback' and 'overall_score'"
        raise ParseError(msg, raw=text)
    return str(obj["feedback"]).strip(), parse_score(str(obj["overall_score"]))
