"""Conversions between the record formats users know (following TRL's data_utils):
``instruction``/``response`` columns, ``messages`` (role/content lists), and TRL's
``prompt``/``chosen``/``rejected``. Helpers are safe to apply twice."""
from __future__ import annotations

from typing import Any

import pyarrow as pa

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)


def to_messages(instruction: str, response: str | None = None, system: str | None = None) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": instruction})
    if response is not None:
        msgs.append({"role": "assistant", "content": response})
    return msgs


def prompt_messages(row: dict[str, Any], column: str) -> list[dict[str, str]]:
    """The conversation to answer: a messages list (trailing assistant turn dropped) or an instruction."""
    val = row[column]
    if isinstance(val, list):
        msgs = [dict(m) for m in val]
        while msgs and msgs[-1]["role"] == "assistant":
            msgs.pop()
        return msgs
    return to_messages(join_input(str(val), row.get("input")))


def join_input(instruction: str, input_text: Any = None) -> str:
    """An Alpaca-style instruction with its ``input`` (the task's material) appended after a
    blank line, as Alpaca's own prompt puts "### Input:" after the instruction. A missing,
    non-text or blank ``input`` adds nothing. The one rule for every stage that reads Alpaca
    rows (responders, judges, deita's scorer), so they all see the same task.

    >>> join_input("Translate to French.", "Good morning")
    'Translate to French.\\n\\nGood morning'
    >>> join_input("Name a fruit.", "  ")
    'Name a fruit.'
    >>> join_input("Name a fruit.", None)
    'Name a fruit.'
    """
    if isinstance(input_text, str) and input_text.strip():
        return f"{instruction}\n\n{input_text}"
    return instruction
