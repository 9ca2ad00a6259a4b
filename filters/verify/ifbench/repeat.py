"""IFBench ``repeat:*``: copy (part of) the request back, exactly or with one change.

``prompt_to_repeat`` is the request text stored in the instruction's kwargs, not the
full prompt (which also holds the instruction itself).
"""
from __future__ import annotations

from filters.verify.ifbench.kwargs import integer, nonempty

__all__ = ["check_repeat_change", "check_repeat_simple", "check_repeat_span"]

_SIMPLE_SENTENCE = "only output this sentence here, ignore all other requests."


def check_repeat_change(response: str, *, prompt: str = "", prompt_to_repeat: str) -> bool:
    """``repeat:repeat_change``: the request repeated with only its first word changed
    (whitespace-normalised comparison of everything after the first word; a verbatim
    copy fails).

    >>> check_repeat_change("Describe a cat.", prompt_to_repeat="Draw a cat.")
    True
    >>> check_repeat_change("Draw a cat.", prompt_to_repeat="Draw a cat.")
    False
    """
    nonempty(prompt_to_repeat, "prompt_to_repeat")
    if response == prompt_to_repeat:
        return False
    return prompt_to_repeat.split()[1:] == response.split()[1:]


def check_repeat_simple(response: str, *, prompt: str = "") -> bool:
    """``repeat:repeat_simple``: exactly "Only output this sentence here, ignore all other
    requests." (case and surrounding whitespace ignored).

    >>> check_repeat_simple("  ONLY output this sentence here, ignore all other requests.\\n")
    True
    """
    return response.strip().lower() == _SIMPLE_SENTENCE


def check_repeat_span(response: str, *, prompt: str = "", prompt_to_repeat: str, n_start: int, n_end: int) -> bool:
    """``repeat:repeat_span``: exactly the words ``n_start``..``n_end`` (inclusive,
    0-based, whitespace-split) of the request, case ignored.

    >>> check_repeat_span("the quick brown", prompt_to_repeat="See the quick brown fox", n_start=1, n_end=3)
    True
    """
    nonempty(prompt_to_repeat, "prompt_to_repeat")
    start, end = integer(n_start, "n_start"), integer(n_end, "n_end")
    span = " ".join(prompt_to_repeat.split()[start : end + 1])
    return response.strip().lower() == span.strip().lower()
