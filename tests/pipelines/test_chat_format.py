"""pipelines.chat_format: the one rule that joins an Alpaca ``input`` to its instruction."""
from __future__ import annotations

import pytest

from filters.select.deita_prompts import instruction_text
from pipelines.chat_format import join_input, prompt_messages

ROWS = [
    {"instruction": "Translate to French.", "input": "Good morning"},
    {"instruction": "Name a fruit.", "input": "  "},
    {"instruction": "Name a fruit.", "input": ""},
    {"instruction": "Name a fruit.", "input": None},
    {"instruction": "Name a fruit."},
    {"instruction": "Sum these.", "input": "\n1 2 3\n"},
]


# Bug (issue 10, item 16): the responder joined any truthy `input` ("  " included) while
# deita's scorer skipped blank ones, so scorer and responder saw different tasks for the
# same row. Both now call pipelines.chat_format.join_input.
@pytest.mark.parametrize("row", ROWS)
def test_responder_and_scorer_see_the_same_task(row):
    responder = prompt_messages(row, "instruction")[-1]["content"]
    assert responder == instruction_text(row["instruction"], row.get("input")) == join_input(row["instruction"], row.get("input"))


def test_blank_input_adds_nothing():
    assert prompt_messages({"instruction": "Name a fruit.", "input": "  "}, "instruction") == [{"role": "user", "content": "Name a fruit."}]
    assert join_input("Sum these.", "1 2") == "Sum these.\n\n1 2"
