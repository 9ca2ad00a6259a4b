"""Rule-based constraint extraction (ACT, methods.md 4.1): free-form instructions -> typed
IFEval constraints.

ACT's verifiers need each prompt's constraints as ``(instruction_id, kwargs)`` pairs. The
ids are those of the IFEval registry (:data:`filters.verify.ifeval.CHECKERS`) and every extracted
pair is validated there (:func:`validate_constraint`), so whatever this package emits can
be verified by :class:`filters.verify.verify_constraints.VerifyConstraints` without a surprise.

One small regex rule per IFEval id, written for the template phrasings of google-research
``instructions.py`` and their common paraphrases ("in less than 300 words", "do not use
any commas", "wrap your entire response with double quotation marks", ...), grouped by
family much as :mod:`filters.verify.ifeval` groups the checkers: :mod:`.length`,
:mod:`.formatting`, :mod:`.combination`, :mod:`.casing`, :mod:`.keywords`,
:mod:`.punctuation`, :mod:`.language`. Rules aim at precision: a rule that cannot read a
value (which word, how many) emits nothing rather than a guess. Figures on IFEval's 541 prompts are in ``bench/constraint_extraction.py``;
the :class:`~filters.verify.extract.ExtractConstraints` stage runs the rules and can
hand rows where none fired to an LLM (:mod:`filters.verify.extract_llm`).

Relations follow the reference's two (``"less than"`` / ``"at least"``), so "at most 150
words" becomes ``less than 151`` and "more than 30 sentences" ``at least 31``, as the
IFEval annotations store them (:mod:`.quantities`).

>>> [(c.instruction_id, c.kwargs) for c in extract_constraints("Write a poem. Do not use any commas and answer with at most 50 words.")]
[('punctuation:no_comma', {}), ('length_constraints:number_words', {'relation': 'less than', 'num_words': 51})]
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from filters.verify.rules import (
    casing,
    combination,
    formatting,
    keywords,
    language,
    length,
    punctuation,
)
from filters.verify.rules.combination import repeat_span
from filters.verify.rules.kwargs import validate_constraint
from filters.verify.rules.language import LANGUAGES
from filters.verify.rules.quantities import number, relation
from filters.verify.rules.spans import Hit
from pipelines.errors import ConfigError

__all__ = ["LANGUAGES", "RULES", "Constraint", "extract_constraints", "number", "relation", "repeat_span", "validate_constraint"]


class Constraint(NamedTuple):
    """One typed constraint: an IFEval instruction id and its checker kwargs."""

    instruction_id: str
    kwargs: dict[str, Any]


# Each rule yields (position, id, kwargs); positions order the output as the text reads.
RULES: tuple[Callable[[str], Iterator[Hit]], ...] = (
    punctuation.no_comma, length.lengths, length.paragraphs, formatting.placeholders, formatting.postscript,
    formatting.bullets, formatting.constrained_response, formatting.highlights, formatting.multiple_sections,
    formatting.json_format, formatting.title, combination.two_responses, combination.end_checker,
    combination.quotation, casing.capital_frequency, casing.english_case, keywords.existence, keywords.frequency,
    keywords.forbidden_words, keywords.letter_frequency, language.response_language,
)


def extract_constraints(text: str) -> list[Constraint]:
    """Typed IFEval constraints found in ``text`` by the rules, in reading order, validated.

    The "repeat the request" instruction is read first and blanked out for the other
    rules (its "do not say any words" is not a forbidden-words constraint). Hits that
    fail :func:`validate_constraint` are dropped, as are exact repeats.

    >>> [c.instruction_id for c in extract_constraints("Write a limerick in all lowercase letters. End it with the phrase \\"Peace!\\"")]
    ['change_case:english_lowercase', 'startend:end_checker']
    """
    hits: list[Hit] = list(combination.repeat_prompt(text))
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
