"""Magpie's query sanitizer (exp/str_utils.py instruction_post_process) on hand-written samples."""
from __future__ import annotations

import pytest

from synth.magpie.sanitize import (
    first_line,
    leaked_template,
    looks_incomplete,
    sanitize_instruction,
)


@pytest.mark.parametrize(
    ("raw", "family", "expected"),
    [
        # numbering and a label go; no "?" -> first line (Llama-3 "else" branch is 99.x)
        ("1. Task: Write a haiku about rain.\nRain falls softly", "llama-3", ("Write a haiku about rain.", 99.2)),
        ("a) Describe the water cycle.", "llama-3", ("Describe the water cycle.", 99.2)),
        ("Q1: What is entropy? It measures disorder.", "llama-3", ("What is entropy?", 99.1)),
        ("How do I reverse a list in Python? I tried list.reverse().", "llama-3",
         ("How do I reverse a list in Python?", 99.1)),
        # bold label and a question: class 1 returns early
        ("**Question:** How do plants make food?\n\nPlants use photosynthesis.", "llama-3",
         ("How do plants make food?", 1.0)),
        # quoted query
        ('"What is the capital of France?" asked the student.', "llama-3", ("What is the capital of France?", 2.1)),
        ('"Write a limerick about cats."\nThere once was a cat', "llama-3", ("Write a limerick about cats.", 2.2)),
        # the model starts answering
        ("Which planet is largest? The answer is: Jupiter.", "llama-3", ("Which planet is largest?", 4.0)),
        ("Find the derivative of x^2.\n## Step 1: Apply the power rule", "llama-3", ("Find the derivative of x^2.", 5.0)),
        # first line ends with ':' (6.x for Llama-3)
        ("Consider the following problem:\nIs 17 prime? Explain.", "llama-3",
         ("Consider the following problem:\nIs 17 prime?", 6.2)),
        ("Translate the following into French:\nGood morning", "llama-3", ("Translate the following into French:", 6.3)),
        ("Here is my code:\n```python\n# compute the sum\nprint(1)\n```", "llama-3", ("Here is my code:\n```python", 6.1)),
        # Gemma-2 numbering: no step rule, colon cases are 5.x, the rest 6.x
        ("Find the derivative of x^2.\n## Step 1: Apply the power rule", "gemma-2", ("Find the derivative of x^2.", 6.2)),
        ("Translate the following into French:\nGood morning", "gemma-2", ("Translate the following into French:", 5.3)),
        ("How do I reverse a list in Python? I tried list.reverse().", "gemma-2", ("How do I reverse a list in Python?", 6.1)),
        # model paths pick the family the way the reference does (substring match)
        ("Describe a sunset.\nThe sky glows", "meta-llama/Meta-Llama-3.1-8B-Instruct", ("Describe a sunset.", 99.2)),
        ("Describe a sunset.\nThe sky glows", "google/gemma-2-9b-it", ("Describe a sunset.", 6.2)),
        # "generic" (also any other model path) uses the Gemma-2 rules; "none" leaves text alone
        ("Describe a sunset.\nThe sky glows", "generic", ("Describe a sunset.", 6.2)),
        ("Describe a sunset.\nThe sky glows", "Qwen/Qwen2.5-7B-Instruct", ("Describe a sunset.", 6.2)),
        ("1. Describe a sunset.\nThe sky glows", "none", ("1. Describe a sunset.\nThe sky glows", 0.0)),
    ],
)
def test_sanitize_instruction(raw: str, family: str, expected: tuple[str, float]) -> None:
    assert sanitize_instruction(raw, family) == expected


def test_answer_marker_with_colon_is_cut() -> None:
    # Reference bug: the marker "Solution:" got another "s?:" appended, so the regex wanted
    # "Solution::" and the answer stayed in the query (class 99.2 there).
    assert sanitize_instruction("Solve 2x + 3 = 7 for x. Solution: x = 2", "llama-3") == ("Solve 2x + 3 = 7 for x.", 4.0)
    assert sanitize_instruction("Name a prime. Answer: 7", "gemma-2") == ("Name a prime.", 4.0)


def test_answer_markers_are_case_sensitive() -> None:
    # As in the reference: lower-case "answer:" inside a sentence is not an answer marker.
    assert sanitize_instruction("Why is my answer: wrong", "llama-3") == ("Why is my answer: wrong", 99.2)


def test_bold_html_query_keeps_first_line() -> None:
    # Reference bug: the <b> branch computed the first line without tags and threw it away.
    raw = "<b>Summarize this article about solar power</b>\nThe article says panels are cheap."
    assert sanitize_instruction(raw, "llama-3") == ("Summarize this article about solar power", 3.0)


def test_first_line() -> None:
    assert first_line("  How do I sort a list?\nSure! Use sorted().") == "How do I sort a list?"
    assert first_line("\nleading newline") == ""  # what a "\n" stop gives when the model opens with one
    assert first_line("single line ") == "single line"


def test_looks_incomplete() -> None:
    assert looks_incomplete("Here is my code:")
    assert looks_incomplete("Translate this: \n")
    assert not looks_incomplete("What is 2:3 as a fraction?")


LLAMA3_STOPS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "assistant"]


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("What is AI?<|eot_id|>", True),
        ("Tell me a joke<|start_header_id|>", True),
        ("What is AI?assistant\n\nAI is the study of", True),  # header decoded without specials
        ("What is AI?\nassistant\n\nAI is", True),
        ("Explain recursion.\nAssistant:", False),  # role words are case-sensitive, like stop strings
        ("Can you be my assistant\nfor today?", False),
        ("I need a virtual assistant for my shop.", False),
        ("What does an assistant manager do?", False),
    ],
)
def test_leaked_template(text: str, leaked: bool) -> None:
    assert leaked_template(text, LLAMA3_STOPS) is leaked


def test_leaked_template_with_chatml_role_words() -> None:
    stops = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "Assistant", "assistant"]
    assert leaked_template("Write a poem.\nAssistant:\nRoses are red", stops)
    assert not leaked_template("Write a poem about an Assistant.", stops)
    assert leaked_template("Write a poem.<|im_end|>", stops)
