"""deita's scorer prompts and how a row becomes (user, assistant) turns to score.

The templates are deita's own strings (``llama_scorer.py`` / ``mistral_scorer.py``); a
general chat model gets them in a user turn with :data:`CHAT_SUFFIX` (see
:class:`filters.select.deita_score.DeitaScore` for why).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.chat_format import join_input

__all__ = [
    "CHAT_SUFFIX",
    "COMPLEXITY_TEMPLATE",
    "QUALITY_TEMPLATE",
    "chat_prompt",
    "complexity_prompt",
    "conversation_turns",
    "instruction_text",
    "quality_prompt",
]

# Verbatim from deita's llama_scorer.py / mistral_scorer.py (note the double space and the
# trailing spaces: the released scorers were trained on exactly these strings).
COMPLEXITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the complexity score of the following user query. \n"
    "##Query: {instruction}  \n##Complexity: "
)
QUALITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the quality score of the Response corresponding to the Question. \n"
    " #Question#:\n{instruction}\n#Response#:\n{output} \n##Quality: "
)
# Appended to the deita prompt for a general chat model (``template: chat``), whose first
# answer token is otherwise rarely a digit.
CHAT_SUFFIX = "\nAnswer with a single digit from 1 (lowest) to 6 (highest) and nothing else."


def complexity_prompt(instruction: str) -> str:
    """deita's complexity prompt for one user message.

    >>> complexity_prompt("Hi")[-29:]
    '\\n##Query: Hi  \\n##Complexity: '
    """
    return COMPLEXITY_TEMPLATE.format(instruction=instruction)


def quality_prompt(instruction: str, output: str) -> str:
    """deita's quality prompt for one (user message, response) pair."""
    return QUALITY_TEMPLATE.format(instruction=instruction, output=output)


def chat_prompt(prompt: str) -> list[dict[str, str]]:
    """A deita prompt as a one-message chat for a general chat model (``template: chat``):
    the template's trailing ``##Complexity: `` cue is kept and :data:`CHAT_SUFFIX` asks for
    one digit."""
    return [{"role": "user", "content": prompt.rstrip() + CHAT_SUFFIX}]


def instruction_text(instruction: str, input_text: str | None = None) -> str:
    """An Alpaca-style instruction with its non-empty ``input`` appended after a blank line
    (as :func:`pipelines.chat_format.prompt_messages` does, so scorer and responder see the same
    task).

    >>> instruction_text("Translate to French.", "Good morning")
    'Translate to French.\\n\\nGood morning'
    >>> instruction_text("Name a fruit.", "  ")
    'Name a fruit.'
    """
    return join_input(instruction, input_text)  # the one rule, in pipelines.chat_format


def conversation_turns(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(user message, assistant reply) per turn; system messages are skipped, a final
    unanswered user message gets ``""`` (as deita does for ShareGPT), and consecutive user
    messages are joined with a blank line.

    >>> conversation_turns([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
    ...                     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}])
    [('Hi', 'Hello!'), ('Bye', '')]
    """
    turns: list[tuple[str, str]] = []
    user: str | None = None
    for m in messages:
        role, content = m.get("role"), m.get("content") or ""
        if role == "user":
            user = content if user is None else f"{user}\n\n{content}"
        elif role == "assistant":
            if user is None:  # an assistant message with no question: nothing to score
                continue
            turns.append((user, content))
            user = None
    if user is not None:
        turns.append((user, ""))
    return turns

