"""The LLM fallback of constraint extraction: prompt, JSON schema and parser.

:class:`filters.verify.extract.ExtractConstraints` sends instructions where no rule
fired to an LLM with JSON-schema structured output (vLLM ``structured_outputs``), so the
engine can only emit known instruction ids, known kwarg names and the two relations. The
parser still validates every item against the IFEval registry: a schema cannot say that
``nth_paragraph`` must not exceed ``num_paragraphs``, nor which kwargs an id needs.

>>> parse_constraints('{"constraints": [{"instruction_id": "punctuation:no_comma", "kwargs": {}}]}')
[Constraint(instruction_id='punctuation:no_comma', kwargs={})]
"""
from __future__ import annotations

import inspect
import json
from typing import Any

from filters.verify.rules import Constraint, validate_constraint
from filters.verify.ifeval import CHECKERS
from pipelines.errors import ConfigError, ParseError

__all__ = ["CONSTRAINTS_SCHEMA", "DESCRIPTIONS", "extraction_prompt", "parse_constraints"]

# One line per id, after the reference's build_description templates (instructions.py).
DESCRIPTIONS: dict[str, str] = {
    "keywords:existence": "include every keyword in `keywords`",
    "keywords:frequency": "the word `keyword` appears `relation` `frequency` times",
    "keywords:forbidden_words": "none of `forbidden_words` appears",
    "keywords:letter_frequency": "the character `letter` appears `let_relation` `let_frequency` times",
    "language:response_language": "the whole answer is in `language` (ISO 639-1 code, e.g. hi, fr, de)",
    "length_constraints:number_sentences": "`relation` `num_sentences` sentences",
    "length_constraints:number_paragraphs": "exactly `num_paragraphs` paragraphs separated by the markdown divider ***",
    "length_constraints:number_words": "`relation` `num_words` words",
    "length_constraints:nth_paragraph_first_word": "`num_paragraphs` paragraphs separated by blank lines; paragraph `nth_paragraph` starts with `first_word`",
    "detectable_content:number_placeholders": "at least `num_placeholders` placeholders in square brackets like [name]",
    "detectable_content:postscript": "ends with a postscript starting with `postscript_marker` (P.S. or P.P.S)",
    "detectable_format:number_bullet_lists": "exactly `num_bullets` markdown bullet points",
    "detectable_format:constrained_response": "answers with one of 'My answer is yes.', 'My answer is no.', 'My answer is maybe.'",
    "detectable_format:number_highlighted_sections": "at least `num_highlights` sections highlighted with markdown like *this*",
    "detectable_format:multiple_sections": "`num_sections` sections, each starting with `section_spliter` X (e.g. SECTION 1)",
    "detectable_format:json_format": "the whole answer is JSON",
    "detectable_format:title": "a title in double angular brackets, like <<title>>",
    "combination:two_responses": "two different answers separated by ******",
    "combination:repeat_prompt": "first repeats the request `prompt_to_repeat` word for word",
    "startend:end_checker": "ends with the exact phrase `end_phrase`",
    "change_case:capital_word_frequency": "words in ALL CAPS appear `capital_relation` `capital_frequency` times",
    "change_case:english_capital": "the whole answer is English in capital letters",
    "change_case:english_lowercase": "the whole answer is English in lowercase letters",
    "punctuation:no_comma": "no commas at all",
    "startend:quotation": "the whole answer is wrapped in double quotation marks",
}

_RELATIONS = ["less than", "at least"]


def _kwarg_schemas() -> dict[str, dict[str, Any]]:
    """JSON types of every IFEval kwarg, read from the checkers' annotations."""
    out: dict[str, dict[str, Any]] = {}
    for checker in CHECKERS.values():
        for name, p in inspect.signature(checker).parameters.items():
            if p.kind is not p.KEYWORD_ONLY or name == "prompt":
                continue
            ann = str(p.annotation)
            if name.endswith("relation"):
                out[name] = {"type": "string", "enum": _RELATIONS}
            elif ann == "int":
                out[name] = {"type": "integer"}
            elif ann.startswith("Sequence"):
                out[name] = {"type": "array", "items": {"type": "string"}}
            else:
                out[name] = {"type": "string"}
    return out


CONSTRAINTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "constraints": {
            "type": "array",
            "maxItems": 10,
            "items": {
                "type": "object",
                "properties": {
                    "instruction_id": {"type": "string", "enum": list(CHECKERS)},
                    "kwargs": {"type": "object", "properties": _kwarg_schemas(), "additionalProperties": False},
                },
                "required": ["instruction_id", "kwargs"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["constraints"],
    "additionalProperties": False,
}

_TEMPLATE = """Find the verifiable constraints in the instruction below. Use only these constraint ids (kwargs in backticks):
{ids}

Relations are "less than" or "at least": "at most 150 words" is {{"relation": "less than", "num_words": 151}}. List only constraints the instruction states; if there are none, return an empty list.

Example: "Write a poem about tea. Do not use any commas and answer in less than 50 words."
{{"constraints": [{{"instruction_id": "punctuation:no_comma", "kwargs": {{}}}}, {{"instruction_id": "length_constraints:number_words", "kwargs": {{"relation": "less than", "num_words": 50}}}}]}}

Instruction:
{instruction}

Answer with JSON only."""


def extraction_prompt(instruction: str) -> str:
    """The user message asking the LLM for ``{"constraints": [{instruction_id, kwargs}]}``."""
    ids = "\n".join(f"- {iid}: {desc}" for iid, desc in DESCRIPTIONS.items())
    return _TEMPLATE.format(ids=ids, instruction=instruction.strip())


def parse_constraints(text: str) -> list[Constraint]:
    """Constraints from the LLM's JSON; invalid items are dropped.

    Raises ``ParseError`` when the text is not that JSON, or when it lists constraints
    and none of them is valid (an unusable answer, not "no constraints"). An empty list
    is a valid answer: the instruction has no constraint.

    >>> parse_constraints('{"constraints": []}')
    []
    >>> parse_constraints('{"constraints": [{"instruction_id": "length_constraints:number_words", "kwargs": {"num_words": -3}}]}')
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: no valid constraint among 1 item(s)
    """
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ParseError(f"not JSON: {exc}", raw=text) from None
    items = obj.get("constraints") if isinstance(obj, dict) else obj
    if not isinstance(items, list):
        raise ParseError("expected {\"constraints\": [...]}", raw=text)
    out: list[Constraint] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("instruction_id"), str):
            continue
        iid, kwargs = item["instruction_id"], item.get("kwargs") or {}
        try:
            kwargs = validate_constraint(iid, kwargs)
        except ConfigError:
            continue
        key = json.dumps([iid, kwargs], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(Constraint(iid, kwargs))
    if items and not out:
        raise ParseError(f"no valid constraint among {len(items)} item(s)", raw=text)
    return out
