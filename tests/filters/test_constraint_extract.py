"""Constraint extraction (filters/verify/extract.py, filters/verify/extract_llm.py):
rules on hand-written phrasings, kwargs validation, the LLM JSON parser and the stage."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from filters.verify.extract import ExtractConstraints
from filters.verify.extract_llm import (
    CONSTRAINTS_SCHEMA,
    extraction_prompt,
    parse_constraints,
)
from filters.verify.rules import (
    Constraint,
    extract_constraints,
    number,
    relation,
    repeat_span,
    validate_constraint,
)
from pipelines.errors import ConfigError, ParseError
from pipelines.stage import RAW, REASON
from synth.backends.llm import Completion, Output


def pairs(text: str) -> list[tuple[str, dict]]:
    return [(c.instruction_id, c.kwargs) for c in extract_constraints(text)]


# -- one rule at a time, on phrasings written for these tests ----------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Describe a sunset. Please don't use any commas.", [("punctuation:no_comma", {})]),
        ("List fruits. Commas are not allowed in your answer.", [("punctuation:no_comma", {})]),
        ("Explain gravity in at least 120 words.", [("length_constraints:number_words", {"relation": "at least", "num_words": 120})]),
        ("Explain gravity in less than 80 words.", [("length_constraints:number_words", {"relation": "less than", "num_words": 80})]),
        ("Explain gravity in at most 80 words.", [("length_constraints:number_words", {"relation": "less than", "num_words": 81})]),
        ("Write a 250+ word essay on tea.", [("length_constraints:number_words", {"relation": "at least", "num_words": 250})]),
        # "twenty-five" was once read as 20 (with "five" taken for an adjective)
        ("Keep it under twenty-five words.", [("length_constraints:number_words", {"relation": "less than", "num_words": 25})]),
        ("Answer in fewer than five sentences.", [("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 5})]),
        ("Use more than 12 sentences.", [("length_constraints:number_sentences", {"relation": "at least", "num_sentences": 13})]),
        (
            "Tell a story in 3 to 6 sentences.",
            [("length_constraints:number_sentences", {"relation": "at least", "num_sentences": 3}), ("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 7})],
        ),
        ("Wrap your whole answer in double quotes.", [("startend:quotation", {})]),
        ('Describe Paris. End your reply with the exact phrase "See you soon!"', [("startend:end_checker", {"end_phrase": "See you soon!"})]),
        ("Reply in all lowercase letters.", [("change_case:english_lowercase", {})]),
        ("Write it without any capital letters.", [("change_case:english_lowercase", {})]),
        ("Shout it: answer in all capital letters.", [("change_case:english_capital", {})]),
        ('Include the keywords "harbor" and "lantern" in the poem.', [("keywords:existence", {"keywords": ["harbor", "lantern"]})]),
        ("Do not include the keywords: storm, thunder.", [("keywords:forbidden_words", {"forbidden_words": ["storm", "thunder"]})]),
        ('The word "river" should appear at least 3 times.', [("keywords:frequency", {"keyword": "river", "frequency": 3, "relation": "at least"})]),
        ("Make sure the letter z appears at least 4 times.", [("keywords:letter_frequency", {"letter": "z", "let_frequency": 4, "let_relation": "at least"})]),
        (
            "Write 2 paragraphs about owls, separated by the markdown divider ***.",
            [("length_constraints:number_paragraphs", {"num_paragraphs": 2})],
        ),
        ("At the end, add a postscript starting with P.S.", [("detectable_content:postscript", {"postscript_marker": "P.S."})]),
        ("Use exactly 4 bullet points, like:\n* item", [("detectable_format:number_bullet_lists", {"num_bullets": 4})]),
        ("Give it a title wrapped in double angular brackets, such as <<my title>>.", [("detectable_format:title", {})]),
        ("Highlight at least 2 sections with markdown, i.e. *highlighted section*.", [("detectable_format:number_highlighted_sections", {"num_highlights": 2})]),
        ("Respond only in German, no other language is allowed.", [("language:response_language", {"language": "de"})]),
        ("Reply in Spanish.", [("language:response_language", {"language": "es"})]),
        ("Return the answer in JSON format.", [("detectable_format:json_format", {})]),
        ("Give two different responses separated by 6 asterisk symbols ******.", [("combination:two_responses", {})]),
        ("Include at least 3 placeholders in square brackets, like [name].", [("detectable_content:number_placeholders", {"num_placeholders": 3})]),
        (
            "Your plan must have 3 sections. Mark the beginning of each section with SECTION X.",
            [("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 3})],
        ),
        (
            "Is water wet? Answer with one of: 'My answer is yes.', 'My answer is no.', 'My answer is maybe.'",
            [("detectable_format:constrained_response", {})],
        ),
        (
            "Words in all capital letters should appear fewer than 6 times.",
            [("change_case:capital_word_frequency", {"capital_relation": "less than", "capital_frequency": 6})],
        ),
        (
            # "use ... but fewer than": IFEval annotates both bounds
            "Use a few words in all capital letters, but fewer than 6 times.",
            [("change_case:capital_word_frequency", {"capital_relation": "at least", "capital_frequency": 1}), ("change_case:capital_word_frequency", {"capital_relation": "less than", "capital_frequency": 6})],
        ),
    ],
)
def test_rule_hand_written(text, expected):
    assert pairs(text) == expected


def test_nth_paragraph_first_word():
    text = "Write exactly 3 paragraphs separated by two new lines. The second paragraph must start with the word 'Harvest'."
    assert pairs(text) == [("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "harvest"})]


def test_repeat_request_above_and_below():
    above = "Write a haiku about rain.\nFirst repeat the request word for word without change, then give your answer (do not say anything before repeating the request)."
    assert pairs(above) == [("combination:repeat_prompt", {"prompt_to_repeat": "Write a haiku about rain."})]
    below = "Repeat the request below exactly as it is, then answer it.\n\nName three rivers."
    assert pairs(below) == [("combination:repeat_prompt", {"prompt_to_repeat": "Name three rivers."})]
    assert repeat_span("The chorus is repeated twice.") is None


def test_repeat_instruction_is_not_read_as_forbidden_words():
    # its "do not say any words" once produced keywords:forbidden_words
    text = "Name a color.\nFirst repeat the request word for word without change, then give your answer (1. do not say any words or characters before repeating the request)"
    assert [c.instruction_id for c in extract_constraints(text)] == ["combination:repeat_prompt"]


def test_several_constraints_in_reading_order():
    text = "Write a poem about snow in all lowercase letters. Do not use any commas. Answer with at least 50 words."
    assert [c.instruction_id for c in extract_constraints(text)] == [
        "change_case:english_lowercase",
        "punctuation:no_comma",
        "length_constraints:number_words",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of France?",
        "Write a story about a dragon and a knight.",
        "List the words that rhyme with cat.",
        "Explain how commas are used in English.",
        "Summarize the plot of Hamlet.",
    ],
)
def test_no_constraint_in_plain_instructions(text):
    assert extract_constraints(text) == []


def test_numbers_and_relations():
    assert number("1,200") == 1200 and number("seventeen") == 17 and number("twice") == 2 and number("lots") == -1
    assert relation("no more than", 10) == ("less than", 11)
    assert relation("fewer than", 10) == ("less than", 10)
    assert relation(None, 10, "or more") == ("at least", 10)
    assert relation("exactly", 10) is None


# -- kwargs validation ----------------------------------------------------------------

def test_validate_accepts_registry_kwargs():
    assert validate_constraint("keywords:existence", {"keywords": ["a"]}) == {"keywords": ["a"]}
    assert validate_constraint("detectable_format:title", None) == {}
    assert validate_constraint("language:response_language", {"language": "fr"}) == {"language": "fr"}


@pytest.mark.parametrize(
    ("iid", "kwargs"),
    [
        ("no:such_id", {}),
        ("length_constraints:number_words", {"num_words": 10}),  # missing relation
        ("length_constraints:number_words", {"num_words": 10, "relation": "about"}),
        ("length_constraints:number_words", {"num_words": -1, "relation": "at least"}),
        ("length_constraints:number_sentences", {"num_sentences": "5", "relation": "at least"}),
        ("change_case:capital_word_frequency", {"capital_frequency": 3, "capital_relation": "around"}),
        ("keywords:existence", {"keywords": []}),
        ("keywords:existence", {"keywords": ["a"], "extra": 1}),
        ("keywords:letter_frequency", {"letter": "ab", "let_frequency": 1, "let_relation": "at least"}),
        ("language:response_language", {"language": "klingon"}),
        ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "a"}),
    ],
)
def test_validate_refuses_bad_kwargs(iid, kwargs):
    with pytest.raises(ConfigError):
        validate_constraint(iid, kwargs)


# -- the LLM's JSON ---------------------------------------------------------------------

def test_parse_constraints_keeps_valid_items_only():
    text = json.dumps({"constraints": [
        {"instruction_id": "punctuation:no_comma", "kwargs": {}},
        {"instruction_id": "length_constraints:number_words", "kwargs": {"num_words": 40}},  # invalid: no relation
        {"instruction_id": "punctuation:no_comma", "kwargs": {}},  # repeat
    ]})
    assert parse_constraints(text) == [Constraint("punctuation:no_comma", {})]


@pytest.mark.parametrize("text", ["not json", '{"constraints": 3}', '{"constraints": [{"instruction_id": "nope", "kwargs": {}}]}'])
def test_parse_constraints_errors(text):
    with pytest.raises(ParseError):
        parse_constraints(text)


def test_schema_and_prompt_name_every_id():
    ids = CONSTRAINTS_SCHEMA["properties"]["constraints"]["items"]["properties"]["instruction_id"]["enum"]
    assert len(ids) == 25
    prompt = extraction_prompt("Say hi.")
    assert all(i in prompt for i in ids) and prompt.rstrip().endswith("Answer with JSON only.")
    kwargs = CONSTRAINTS_SCHEMA["properties"]["constraints"]["items"]["properties"]["kwargs"]["properties"]
    assert kwargs["num_words"] == {"type": "integer"} and kwargs["relation"]["enum"] == ["less than", "at least"]
    assert kwargs["keywords"] == {"type": "array", "items": {"type": "string"}}


# -- the stage --------------------------------------------------------------------------

class FakeLLM:
    """Answers every chat with the next canned text; records what it was asked."""

    name = "fake"

    def __init__(self, texts):
        self.texts, self.calls = list(texts), []

    def chat(self, chats, sampling, *, seeds=None, continue_final_message=False):
        self.calls.append((chats, sampling))
        return [Output([Completion(self.texts.pop(0), "stop")]) for _ in chats]


TABLE = pa.table({"id": ["a", "b", "c"], "instruction": ["Reply in all lowercase letters. Do not use any commas.", "Tell me about cats.", "Write 3 sentences or more."]})


def test_stage_rules_only_rejects_unconstrained_rows():
    stage = ExtractConstraints()
    assert stage.needs_llm is False  # rules alone run as a CPU stage
    kept, rejected = stage.process(TABLE)
    assert kept.num_rows + rejected.num_rows == 3
    assert kept.column("id").to_pylist() == ["a", "c"]
    assert kept.column("instruction_id_list").to_pylist() == [["change_case:english_lowercase", "punctuation:no_comma"], ["length_constraints:number_sentences"]]
    assert [json.loads(k) for k in kept.column("kwargs").to_pylist()] == [[{}, {}], [{"relation": "at least", "num_sentences": 3}]]
    assert kept.column("constraint_source").to_pylist() == ["rules", "rules"]
    assert rejected.column("id").to_pylist() == ["b"]
    assert rejected.column(REASON).to_pylist() == ["no_constraints"]


def test_stage_keep_unconstrained():
    kept, rejected = ExtractConstraints(on_no_constraints="keep").process(TABLE)
    assert kept.num_rows == 3 and rejected.num_rows == 0
    assert kept.column("instruction_id_list").to_pylist()[1] == [] and kept.column("kwargs").to_pylist()[1] == "[]"


def test_stage_llm_only_for_rows_without_a_rule_hit():
    stage = ExtractConstraints(use_llm=True)
    assert stage.needs_llm is True
    stage.llm = FakeLLM([json.dumps({"constraints": [{"instruction_id": "detectable_format:title", "kwargs": {}}]})])
    kept, rejected = stage.process(TABLE)
    chats, sampling = stage.llm.calls[0]
    assert len(chats) == 1 and "Tell me about cats." in chats[0][0]["content"]
    assert sampling["structured_outputs"] == {"json": CONSTRAINTS_SCHEMA} and sampling["temperature"] == 0.0
    assert kept.num_rows == 3 and rejected.num_rows == 0
    assert kept.column("instruction_id_list").to_pylist()[1] == ["detectable_format:title"]
    assert kept.column("constraint_source").to_pylist() == ["rules", "llm", "rules"]


def test_stage_llm_parse_error_rejects_with_raw_text():
    stage = ExtractConstraints(use_llm=True)
    stage.llm = FakeLLM(["{oops"])
    kept, rejected = stage.process(TABLE)
    assert kept.num_rows == 2 and rejected.num_rows == 1
    assert rejected.column(REASON).to_pylist() == ["parse_error:constraints"]
    assert rejected.column(RAW).to_pylist() == ["{oops"]


def test_stage_llm_parse_error_fallback_keeps_rule_result():
    stage = ExtractConstraints(use_llm=True, on_parse_error="fallback", on_no_constraints="keep")
    stage.llm = FakeLLM(["{oops"])
    kept, rejected = stage.process(TABLE)
    assert kept.num_rows == 3 and rejected.num_rows == 0
    assert kept.column("instruction_id_list").to_pylist()[1] == []
    stage = ExtractConstraints(use_llm=True, on_parse_error="fallback")
    stage.llm = FakeLLM(["{oops"])
    _, rejected = stage.process(TABLE)
    assert rejected.column(REASON).to_pylist() == ["no_constraints"]


@pytest.mark.parametrize("params", [{"on_no_constraints": "drop"}, {"on_parse_error": "ignore"}, {"use_llm": "yes"}, {"use_llm": True, "backend": "transformers"}])
def test_stage_bad_params(params):
    with pytest.raises(ConfigError):
        ExtractConstraints(**params)
