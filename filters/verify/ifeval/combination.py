"""IFEval ``combination:*`` and ``startend:*``: the shape of the whole response.

``repeat_prompt`` compares against its ``prompt_to_repeat`` kwarg, not the prompt
itself: the reference's evaluator only substitutes the prompt for a kwarg *named*
``prompt``, which no IFEval instruction has.
"""
from __future__ import annotations

from filters.verify.ifeval.kwargs import need, string

__all__ = ["check_end_checker", "check_quotation", "check_repeat_prompt", "check_two_responses"]

_SEPARATOR = "******"


def check_two_responses(response: str, *, prompt: str = "") -> bool:
    """``combination:two_responses``: exactly two non-blank, different parts split by
    ``******`` (a blank part between two separators fails).

    >>> check_two_responses("Yes.\\n******\\nNo.")
    True
    """
    parts = response.split(_SEPARATOR)
    last = len(parts) - 1
    kept: list[str] = []
    for i, part in enumerate(parts):
        if part.strip():
            kept.append(part)
        elif i != 0 and i != last:
            return False
    return len(kept) == 2 and kept[0].strip() != kept[1].strip()


def check_repeat_prompt(response: str, *, prompt: str = "", prompt_to_repeat: str) -> bool:
    """``combination:repeat_prompt``: the response starts with ``prompt_to_repeat``
    (both stripped, case-insensitive).

    >>> check_repeat_prompt("  Write a poem. Roses...", prompt_to_repeat="write a poem.")
    True
    """
    need(prompt_to_repeat, "prompt_to_repeat")
    return response.strip().lower().startswith(string(prompt_to_repeat, "prompt_to_repeat").strip().lower())


def check_end_checker(response: str, *, prompt: str = "", end_phrase: str) -> bool:
    """``startend:end_checker``: ends with ``end_phrase`` once whitespace and ``"`` are
    stripped from the end, case-insensitive.

    >>> check_end_checker('"... Any other questions?"\\n', end_phrase="Any other questions?")
    True
    """
    phrase = string(end_phrase, "end_phrase").strip().lower()
    return response.strip().strip('"').lower().endswith(phrase)


def check_quotation(response: str, *, prompt: str = "") -> bool:
    """``startend:quotation``: wrapped in double quotes (after stripping whitespace).

    >>> check_quotation('"Hi"')
    True
    """
    value = response.strip()
    return len(value) > 1 and value[0] == '"' and value[-1] == '"'
