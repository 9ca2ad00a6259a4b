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
    text = str(val)
    if row.get("input"):  # Alpaca-style rows carry the task input separately
        text = f"{text}\n\n{row['input']}"
    return to_messages(text)
