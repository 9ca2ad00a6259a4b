"""Magpie's tagging prompts and their parsers, on hand-written tagger replies."""
from __future__ import annotations

import json

import pytest

from pipelines.errors import ParseError
from synth.magpie.tag_prompts import (
    CATEGORY_SCHEMA,
    DIFFICULTY_LEVELS,
    DIFFICULTY_SCHEMA,
    QUALITY_LEVELS,
    QUALITY_SCHEMA,
    TASK_CATEGORIES,
    category_prompt,
    difficulty_prompt,
    parse_category,
    parse_difficulty,
    parse_quality,
    quality_prompt,
)

QUERY = "How do I merge two sorted lists in Python?"


# --------------------------------------------------------------------------- prompts


def test_prompts_embed_the_query_and_the_json_skeleton() -> None:
    d, q, c = difficulty_prompt(QUERY), quality_prompt(QUERY), category_prompt(QUERY)
    for prompt in (d, q, c):
        assert f"## User Query\n```\n{QUERY}\n```" in prompt
    assert '"intent": "The user wants to [....]"' in d
    assert '"knowledge": "To solve this problem, the models need to know [....]"' in d
    assert '"difficulty": "[very easy/easy/medium/hard/very hard]"' in d
    assert '"input_quality": "[very poor/poor/average/good/excellent]"' in q
    assert '"primary_tag": "<primary tag>"' in c


def test_quality_prompt_defines_every_level_in_order() -> None:
    prompt = quality_prompt(QUERY)
    positions = [prompt.index(f"\n- {level}: ") for level in QUALITY_LEVELS]
    assert positions == sorted(positions)


def test_category_prompt_lists_the_twelve_tags() -> None:
    prompt = category_prompt(QUERY)
    assert len(TASK_CATEGORIES) == 12
    positions = [prompt.index(f'    "{tag}",  # ') for tag in TASK_CATEGORIES]
    assert positions == sorted(positions)


def test_schemas_carry_the_enums() -> None:
    assert DIFFICULTY_SCHEMA["properties"]["difficulty"]["enum"] == list(DIFFICULTY_LEVELS)
    assert QUALITY_SCHEMA["properties"]["input_quality"]["enum"] == list(QUALITY_LEVELS)
    assert CATEGORY_SCHEMA["properties"]["primary_tag"]["enum"] == list(TASK_CATEGORIES)
    assert CATEGORY_SCHEMA["properties"]["other_tags"]["items"]["enum"] == list(TASK_CATEGORIES)
    for schema in (DIFFICULTY_SCHEMA, QUALITY_SCHEMA, CATEGORY_SCHEMA):
        assert set(schema["required"]) == set(schema["properties"])
        json.dumps(schema)


# --------------------------------------------------------------------------- difficulty

DIFF = {"intent": "The user wants to merge two sorted lists", "knowledge": "To solve this problem, the models need to know Python lists",
        "difficulty": "easy"}
PREFILLED = "".join(f'\n    "{k}": "{v}",' for k, v in DIFF.items())[:-1] + "\n"


@pytest.mark.parametrize(
    "reply",
    [
        json.dumps(DIFF),
        # continuation of the "{" prefill, closing brace kept (Magpie: stop "}" included)
        PREFILLED + "}",
        # ... and cut off by the stop string
        PREFILLED,
        # fenced, with chatter after the object
        "```json\n" + json.dumps(DIFF, indent=2) + "\n```\nI hope this helps!",
        # chatter before the object, odd case in the level
        "Here is the JSON:\n" + json.dumps({**DIFF, "difficulty": "Easy"}) + " trailing }",
    ],
)
def test_parse_difficulty_accepts_reply_shapes(reply: str) -> None:
    assert parse_difficulty(reply) == DIFF


@pytest.mark.parametrize(("level", "norm"), [("Very Easy", "very easy"), ("VERY_HARD", "very hard"),
                                             ("[medium]", "medium"), ("very-hard", "very hard"), ("hard.", "hard")])
def test_parse_difficulty_normalizes_levels(level: str, norm: str) -> None:
    assert parse_difficulty(json.dumps({**DIFF, "difficulty": level}))["difficulty"] == norm


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (json.dumps({**DIFF, "difficulty": "moderate"}), "field 'difficulty' is 'moderate'"),
        (json.dumps({**DIFF, "difficulty": 3}), "field 'difficulty' is 3"),
        (json.dumps({k: v for k, v in DIFF.items() if k != "knowledge"}), "field 'knowledge' is missing"),
        (json.dumps({**DIFF, "intent": "  "}), "field 'intent' is missing"),
        ('\n    "intent": "The user wants to merge two sor', "not a complete JSON object"),  # truncated at max_tokens
        ("I cannot rate this query.", "no JSON object"),
        ("[1, 2, 3]", "no JSON object"),
    ],
)
def test_parse_difficulty_rejects(reply: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse_difficulty(reply)
    assert info.value.raw == reply


# --------------------------------------------------------------------------- quality


def test_parse_quality() -> None:
    reply = '\n    "explanation": "The query is clear and names the language.",\n    "input_quality": "Excellent"\n}'
    assert parse_quality(reply) == {"input_quality": "excellent", "quality_explanation": "The query is clear and names the language."}


@pytest.mark.parametrize("level", ["Very Poor", "very_poor", "poor", "Average", "GOOD", "excellent"])
def test_parse_quality_levels(level: str) -> None:
    out = parse_quality(json.dumps({"explanation": "x", "input_quality": level}))
    assert out["input_quality"] in QUALITY_LEVELS


@pytest.mark.parametrize("reply", [
    '{"explanation": "Vague.", "input_quality": "bad"}',
    '{"explanation": "Vague."}',
    '{"input_quality": "good"}',
])
def test_parse_quality_rejects(reply: str) -> None:
    with pytest.raises(ParseError):
        parse_quality(reply)


# --------------------------------------------------------------------------- category


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"primary_tag": "Coding & Debugging", "other_tags": ["Reasoning", "Information seeking"]}',
         ("Coding & Debugging", ["Reasoning", "Information seeking"])),
        ('\n    "primary_tag": "Coding & debugging",\n    "other_tags": []\n}', ("Coding & Debugging", [])),
        ('{"primary_tag": "coding and debugging", "other_tags": ["math", "Data Analysis", "math"]}',
         ("Coding & Debugging", ["Math", "Data analysis"])),
        ('{"primary_tag": "Coding/Debugging", "other_tags": "Planning"}', ("Coding & Debugging", ["Planning"])),
        ('{"primary_tag": "Role-playing", "other_tags": null}', ("Role playing", [])),
        ('```json\n{"primary_tag": "Creative Writing", "other_tags": ["Brainstorming"]}\n```', ("Creative writing", ["Brainstorming"])),
        ('{"primary_tag": "Others"}', ("Others", [])),
    ],
)
def test_parse_category(reply: str, expected: tuple[str, list[str]]) -> None:
    assert parse_category(reply) == {"task_category": expected[0], "other_task_category": expected[1]}


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ('{"primary_tag": "Science", "other_tags": []}', "task tag 'Science'"),
        ('{"primary_tag": "Math", "other_tags": ["Math", "Poetry"]}', "task tag 'Poetry'"),
        ('{"primary_tag": "Math", "other_tags": ["<tag 1>", "<tag 2>"]}', "task tag '<tag 1>'"),  # copied placeholder
        ('{"primary_tag": "Math", "other_tags": {"a": 1}}', "not a list"),
        ('{"other_tags": ["Math"]}', "task tag None"),
        ('{"primary_tag": "Math", "other_tags": ["<tag 1>", "<tag 2>", ... ]}', "not a complete JSON object"),
    ],
)
def test_parse_category_rejects(reply: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_category(reply)


# --------------------------------------------------------------------------- released data


def test_released_magpie_tags_fit_the_enums(shared_data) -> None:
    # Rows of a Magpie release: every tag value there must round-trip through our parsers.
    rows = [json.loads(line) for line in (shared_data / "preference" / "magpie_example_instructions.jsonl").read_text().splitlines() if line.strip()]
    assert rows
    for row in rows:
        diff = parse_difficulty(json.dumps({k: row[k] for k in ("intent", "knowledge", "difficulty")}))
        assert diff == {k: row[k] for k in ("intent", "knowledge", "difficulty")}
        assert diff["intent"].startswith("The user wants to")
        assert diff["knowledge"].startswith("To solve this problem, the models need to know")
        qual = parse_quality(json.dumps({"explanation": row["quality_explanation"], "input_quality": row["input_quality"]}))
        assert qual == {"input_quality": row["input_quality"], "quality_explanation": row["quality_explanation"]}
        others = row.get("other_task_category") or []
        cat = parse_category(json.dumps({"primary_tag": row["task_category"], "other_tags": others}))
        assert cat == {"task_category": row["task_category"], "other_task_category": others}
