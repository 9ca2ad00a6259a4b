"""The 25 IFEval instruction ids and their checkers (google-research
``instruction_following_eval/instructions_registry.py``, ``INSTRUCTION_DICT``).

Ids are ``<category>:<name>``; each maps to a pure function
``check_<name>(response, *, prompt, **kwargs) -> bool`` taking the kwargs stored per
instruction in the IFEval JSONL. :func:`bind` checks an id and its kwargs once, before
any response is looked at, so a typo fails with a ``ConfigError`` instead of a verdict.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from filters.verify.ifeval import casing, combination, formatting, keywords, language, length
from pipelines.errors import ConfigError

__all__ = ["CHECKERS", "Checker", "bind", "kwarg_names"]

Checker = Callable[..., bool]

CHECKERS: dict[str, Checker] = {
    "keywords:existence": keywords.check_existence,
    "keywords:frequency": keywords.check_frequency,
    "keywords:forbidden_words": keywords.check_forbidden_words,
    "keywords:letter_frequency": keywords.check_letter_frequency,
    "language:response_language": language.check_response_language,
    "length_constraints:number_sentences": length.check_number_sentences,
    "length_constraints:number_paragraphs": length.check_number_paragraphs,
    "length_constraints:number_words": length.check_number_words,
    "length_constraints:nth_paragraph_first_word": length.check_nth_paragraph_first_word,
    "detectable_content:number_placeholders": formatting.check_number_placeholders,
    "detectable_content:postscript": formatting.check_postscript,
    "detectable_format:number_bullet_lists": formatting.check_number_bullet_lists,
    "detectable_format:constrained_response": formatting.check_constrained_response,
    "detectable_format:number_highlighted_sections": formatting.check_number_highlighted_sections,
    "detectable_format:multiple_sections": formatting.check_multiple_sections,
    "detectable_format:json_format": formatting.check_json_format,
    "detectable_format:title": formatting.check_title,
    "combination:two_responses": combination.check_two_responses,
    "combination:repeat_prompt": combination.check_repeat_prompt,
    "startend:end_checker": combination.check_end_checker,
    "change_case:capital_word_frequency": casing.check_capital_word_frequency,
    "change_case:english_capital": casing.check_english_capital,
    "change_case:english_lowercase": casing.check_english_lowercase,
    "punctuation:no_comma": keywords.check_no_comma,
    "startend:quotation": combination.check_quotation,
}


def kwarg_names(checker: Checker) -> tuple[frozenset[str], frozenset[str]]:
    """(required, allowed) instruction kwargs of a checker; ``prompt`` is not one."""
    params = [p for p in inspect.signature(checker).parameters.values() if p.kind is p.KEYWORD_ONLY and p.name != "prompt"]
    required = frozenset(p.name for p in params if p.default is p.empty)
    return required, frozenset(p.name for p in params)


# Computed once: bind() runs per row.
_KWARGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {iid: kwarg_names(fn) for iid, fn in CHECKERS.items()}


def bind(instruction_id: str, kwargs: Mapping[str, Any] | None) -> tuple[Checker, dict[str, Any]]:
    """The checker for ``instruction_id`` and its kwargs, ``None`` values dropped.

    IFEval files written from Hugging Face datasets carry every kwarg of every
    instruction, ``None`` where unused; those are dropped here.

    Raises
    ------
    ConfigError
        For an unknown id, a kwarg the checker does not take, or a missing one.
    """
    checker = CHECKERS.get(instruction_id)
    if checker is None:
        msg = f"unknown IFEval instruction id {instruction_id!r}; known ids: {', '.join(CHECKERS)}"
        raise ConfigError(msg)
    given = {k: v for k, v in (kwargs or {}).items() if v is not None}
    required, allowed = _KWARGS[instruction_id]
    unknown = given.keys() - allowed
    missing = required - given.keys()
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown kwarg(s) {', '.join(sorted(unknown))}")
        if missing:
            parts.append(f"missing kwarg(s) {', '.join(sorted(missing))}")
        msg = f"instruction {instruction_id!r}: {'; '.join(parts)} (it takes: {', '.join(sorted(allowed)) or 'none'})"
        raise ConfigError(msg)
    return checker, given
