"""Magpie's three LLM tagging prompts (difficulty, input quality, task category) and parsers.

Magpie (``exp/str_utils.py`` + ``exp/unitag.py`` in magpie-align/magpie) tags every query with
Llama-3-8B-Instruct at temperature 0: the prompt below as the user turn, the assistant turn
prefilled with ``{``, generation stopped at ``}`` and the result read with ``json.loads``.
The prompts here are paraphrased with the reference's structure, level definitions and JSON
skeletons (the skeleton's fixed openings, "The user wants to" and "To solve this problem, the
models need to know", shape the released ``intent``/``knowledge`` columns, so they are kept).

The parsers return Magpie's column names and raise :class:`~pipelines.errors.ParseError`
instead of filling ``None`` (the reference sets every field to ``None`` on any failure).
The ``*_SCHEMA`` dicts are JSON schemas for engines with structured output.

Why one module past 300 lines: most of it is prompt text; each tag's prompt, schema and
parser must change together (a renamed JSON key breaks all three), so they stay side by side.
"""
from __future__ import annotations

import json
import re
from typing import Any

from pipelines.errors import ParseError

__all__ = [
    "CATEGORY_SCHEMA",
    "DIFFICULTY_LEVELS",
    "DIFFICULTY_SCHEMA",
    "QUALITY_LEVELS",
    "QUALITY_SCHEMA",
    "TASK_CATEGORIES",
    "category_prompt",
    "difficulty_prompt",
    "parse_category",
    "parse_difficulty",
    "parse_quality",
    "quality_prompt",
]

DIFFICULTY_LEVELS: tuple[str, ...] = ("very easy", "easy", "medium", "hard", "very hard")
QUALITY_LEVELS: tuple[str, ...] = ("very poor", "poor", "average", "good", "excellent")
# Magpie's spelling, "Coding & Debugging" included (the only tag with a capitalised second word).
TASK_CATEGORIES: tuple[str, ...] = (
    "Information seeking", "Reasoning", "Planning", "Editing", "Coding & Debugging", "Math",
    "Role playing", "Data analysis", "Creative writing", "Advice seeking", "Brainstorming", "Others",
)
_TAG_HELP = {
    "Information seeking": "the user asks for specific facts or information on some topic.",
    "Reasoning": "the query needs logical thinking, problem solving or working through complex ideas.",
    "Planning": "the user wants help making a plan or strategy for an activity or project.",
    "Editing": "rewriting, rephrasing, proofreading or otherwise editing general written text.",
    "Coding & Debugging": "the user wants code written, reviewed or fixed.",
    "Math": "mathematical concepts, problems or calculations.",
    "Role playing": "the user sets up a scenario in which the assistant plays a character or persona.",
    "Data analysis": "interpreting data or statistics, or doing an analytical task.",
    "Creative writing": "the user wants help writing stories, poems or other creative text.",
    "Advice seeking": "the user asks for recommendations or guidance on a personal or professional matter.",
    "Brainstorming": "generating ideas, creative thinking or exploring possibilities.",
    "Others": "anything that fits none of the tags above.",
}

MAX_TEXT = 240
DIFFICULTY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # bounded, so a small model that loops inside a string still closes the object
        "intent": {"type": "string", "maxLength": MAX_TEXT},
        "knowledge": {"type": "string", "maxLength": MAX_TEXT},
        "difficulty": {"type": "string", "enum": list(DIFFICULTY_LEVELS)},
    },
    "required": ["intent", "knowledge", "difficulty"],
    "additionalProperties": False,
}
QUALITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "explanation": {"type": "string", "maxLength": MAX_TEXT},
        "input_quality": {"type": "string", "enum": list(QUALITY_LEVELS)},
    },
    "required": ["explanation", "input_quality"],
    "additionalProperties": False,
}
CATEGORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "primary_tag": {"type": "string", "enum": list(TASK_CATEGORIES)},
        "other_tags": {"type": "array", "items": {"type": "string", "enum": list(TASK_CATEGORIES)}, "maxItems": 3},
    },
    "required": ["primary_tag", "other_tags"],
    "additionalProperties": False,
}


# --------------------------------------------------------------------------- prompts


def difficulty_prompt(instruction: str) -> str:
    """User turn asking for the query's intent, the knowledge it needs, and a 5-level difficulty."""
    return f"""
# Instruction

Work out what the user wants in the query below, then rate how difficult the query is, judging by its content alone.

## User Query
```
{instruction}
```

## Output Format
For the user query above, first state the user's intent and the knowledge needed to solve the task it poses.
Then rate its difficulty as `very easy`, `easy`, `medium`, `hard`, or `very hard`.

Now give the intent, knowledge and difficulty level in JSON format, filling in the placeholders in []:
```
{{
    "intent": "The user wants to [....]",
    "knowledge": "To solve this problem, the models need to know [....]",
    "difficulty": "[very easy/easy/medium/hard/very hard]"
}}
```
"""


def quality_prompt(instruction: str) -> str:
    """User turn asking for an assessment and a 5-level rating of the query's clarity and specificity."""
    return f"""
# Instruction

Rate the quality of the user query below by how clear, specific and coherent it is.

The rating scale:

- very poor: the query is unclear, vague or incoherent, and misses essential information and context.
- poor: the query is somewhat unclear or misses important details; it needs significant clarification.
- average: the query is moderately clear and specific; some extra information may be needed to understand it fully.
- good: the query is clear, specific and mostly well-formed, with enough context to understand what the user intends.
- excellent: the query is very clear, specific and well-articulated, with all the information and context needed for a comprehensive response.

## User Query
```
{instruction}
```

## Output Format
First assess the user query, pointing out its strengths and/or weaknesses.
Then rate it from very poor to excellent, filling in the placeholders in [...]:
```
{{
    "explanation": "[...]",
    "input_quality": "[very poor/poor/average/good/excellent]"
}}
```
"""


def category_prompt(instruction: str) -> str:
    """User turn asking for one primary task tag and any other applicable tags out of Magpie's 12."""
    tags = "\n".join(f'    "{tag}",  # {_TAG_HELP[tag]}' for tag in TASK_CATEGORIES)
    return f"""
# Instruction

Label the user query below with task tags.

## User Query
```
{instruction}
```

## Tagging the user input
Analyse the user query and choose the most relevant task tag from this list:

all_task_tags = [
{tags}
]

## Output Format:
Choose exactly one primary tag; put any other tags that apply in the list of other tags.
Now give your tags in JSON format, filling in the placeholders in <...>:
```
{{
    "primary_tag": "<primary tag>",
    "other_tags": ["<tag 1>", "<tag 2>", ... ]
}}
```
"""


# --------------------------------------------------------------------------- parsing

_FENCE = re.compile(r"^```[A-Za-z]*[ \t]*\n?")


def _json_object(text: str) -> dict[str, Any]:
    """The first JSON object in a tagger reply: with or without the ``{`` prefill, in a code
    fence or not, with or without the closing ``}`` (stop strings are often cut off), and with
    any text after it ignored."""
    s = _FENCE.sub("", text.strip()).strip()
    if s.startswith('"'):
        s = "{" + s  # the reply continues the prefilled "{"
    start = s.find("{")
    if start < 0:
        msg = "no JSON object in the tagger output"
        raise ParseError(msg, raw=text)
    s = s[start:]
    decoder = json.JSONDecoder()
    for candidate in (s, s.rstrip().rstrip("`").rstrip() + "}"):
        try:
            obj, _ = decoder.raw_decode(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
        break
    msg = "the tagger output is not a complete JSON object"
    raise ParseError(msg, raw=text)


def _text_field(obj: dict[str, Any], key: str, raw: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        msg = f"field '{key}' is missing or not a non-empty string"
        raise ParseError(msg, raw=raw)
    return value.strip()


def _norm(value: str) -> str:
    v = value.strip().strip("[]<>`'\".").strip().lower()
    v = re.sub(r"[_\-]+", " ", v)
    v = re.sub(r"\s+and\s+|\s*/\s*|\s*&\s*", " & ", v)
    return re.sub(r"\s+", " ", v).strip()


def _level(obj: dict[str, Any], key: str, levels: tuple[str, ...], raw: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or _norm(value) not in levels:
        msg = f"field '{key}' is {value!r}, not one of {list(levels)}"
        raise ParseError(msg, raw=raw)
    return _norm(value)


_TAG_LOOKUP = {_norm(tag): tag for tag in TASK_CATEGORIES}
_TAG_LOOKUP.update({
    "coding": "Coding & Debugging", "debugging": "Coding & Debugging", "code": "Coding & Debugging",
    "coding & debug": "Coding & Debugging", "programming": "Coding & Debugging",
    "role play": "Role playing", "roleplay": "Role playing", "roleplaying": "Role playing",
    "mathematics": "Math", "other": "Others",
})


def _tag(value: Any, raw: str) -> str:
    tag = _TAG_LOOKUP.get(_norm(value)) if isinstance(value, str) else None
    if tag is None:
        msg = f"task tag {value!r} is not one of {list(TASK_CATEGORIES)}"
        raise ParseError(msg, raw=raw)
    return tag


def parse_difficulty(text: str) -> dict[str, str]:
    """Parse a difficulty reply into ``{"intent", "knowledge", "difficulty"}``.

    >>> parse_difficulty('\\n  "intent": "The user wants to add numbers", "knowledge": "To solve '
    ...                  'this problem, the models need to know addition", "difficulty": "Very Easy"}')
    {'intent': 'The user wants to add numbers', 'knowledge': 'To solve this problem, the models need to know addition', 'difficulty': 'very easy'}
    """
    obj = _json_object(text)
    return {
        "intent": _text_field(obj, "intent", text),
        "knowledge": _text_field(obj, "knowledge", text),
        "difficulty": _level(obj, "difficulty", DIFFICULTY_LEVELS, text),
    }


def parse_quality(text: str) -> dict[str, str]:
    """Parse a quality reply into ``{"input_quality", "quality_explanation"}``.

    >>> parse_quality('{"explanation": "Clear.", "input_quality": "Good"}')
    {'input_quality': 'good', 'quality_explanation': 'Clear.'}
    """
    obj = _json_object(text)
    return {
        "input_quality": _level(obj, "input_quality", QUALITY_LEVELS, text),
        "quality_explanation": _text_field(obj, "explanation", text),
    }


def parse_category(text: str) -> dict[str, Any]:
    """Parse a classification reply into ``{"task_category", "other_task_category"}``.

    Tags are mapped to Magpie's spelling ("coding and debugging" -> "Coding & Debugging");
    ``other_task_category`` is a list without repeats (``null`` or a missing list -> ``[]``).

    >>> parse_category('{"primary_tag": "Coding & debugging", "other_tags": ["reasoning"]}')
    {'task_category': 'Coding & Debugging', 'other_task_category': ['Reasoning']}
    """
    obj = _json_object(text)
    primary = _tag(obj.get("primary_tag"), text)
    others_raw = obj.get("other_tags")
    if others_raw is None:
        others_raw = []
    elif isinstance(others_raw, str):
        others_raw = [others_raw] if others_raw.strip() else []
    if not isinstance(others_raw, list):
        msg = f"field 'other_tags' is {type(others_raw).__name__}, not a list"
        raise ParseError(msg, raw=text)
    others: list[str] = []
    for value in others_raw:
        tag = _tag(value, text)
        if tag not in others:
            others.append(tag)
    return {"task_category": primary, "other_task_category": others}
