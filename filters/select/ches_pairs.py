"""Preference pairs in TRL's ``prompt``/``chosen``/``rejected`` format, from the layouts pair
files come in: what the ``ches`` recipe runs first, so it takes any pair file.

Accepted layouts (an explicit list, as ``trl/data_utils.py`` keeps; every helper is safe to
apply twice):

1. **explicit prompt** (TRL standard or conversational): ``prompt`` (a string or a message
   list) with ``chosen``/``rejected`` (strings or message lists). Strings become a user
   message and an assistant message.
2. **implicit prompt, conversational** (TRL): ``chosen``/``rejected`` are whole
   conversations; the prompt is their longest common prefix of messages (TRL's
   ``extract_prompt``).
3. **HH-RLHF transcripts** (Anthropic ``hh-rlhf``): ``chosen``/``rejected`` are strings
   ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``; the prompt is everything before the last
   ``"\\n\\nAssistant:"`` the two share, split into turns (as TRL's
   ``examples/datasets/hh-rlhf-helpful-base.py`` does), and each response is the text
   after it.

Rows that fit none of them are rejected: ``not_a_transcript`` (strings without
Human/Assistant markers and no ``prompt`` column), ``prompt_mismatch`` (the two
transcripts differ before their last assistant turn, so they answer different
conversations), ``no_shared_prompt`` (conversations with no common first message),
``empty_pair`` (a null cell).
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import pyarrow as pa

from pipelines.chat_format import MESSAGES
from pipelines.errors import ParseError, SchemaError
from pipelines.stage import Stage, set_column, split_by_reason

__all__ = ["PairColumns", "as_prompt_messages", "as_response_messages", "split_hh_pair", "split_implicit_prompt", "trl_pair"]

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
_TURN = re.compile(r"(\n\nHuman:|\n\nAssistant:) ?")


def as_prompt_messages(prompt: str | list[dict[str, str]]) -> list[dict[str, str]]:
    """A prompt as a message list: a string is one user message.

    >>> as_prompt_messages("Hi")
    [{'role': 'user', 'content': 'Hi'}]
    >>> as_prompt_messages(as_prompt_messages("Hi"))
    [{'role': 'user', 'content': 'Hi'}]
    """
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": m["role"], "content": m["content"]} for m in prompt]


def as_response_messages(response: str | list[dict[str, str]]) -> list[dict[str, str]]:
    """A response as a message list: a string is one assistant message.

    >>> as_response_messages("Hello")
    [{'role': 'assistant', 'content': 'Hello'}]
    """
    if isinstance(response, str):
        return [{"role": "assistant", "content": response}]
    return [{"role": m["role"], "content": m["content"]} for m in response]


def _turns(text: str) -> list[dict[str, str]]:
    parts = _TURN.split(text)
    if parts[0].strip():
        raise ParseError("text before the first Human/Assistant marker", raw=text[:200])
    out = []
    for marker, content in zip(parts[1::2], parts[2::2]):
        out.append({"role": "user" if marker == HUMAN else "assistant", "content": content})
    return out


def split_hh_pair(chosen: str, rejected: str) -> tuple[list[dict[str, str]], str, str]:
    """Split two HH-RLHF transcripts into (prompt messages, chosen text, rejected text).

    The prompt is the common start of both transcripts cut back to the last
    ``"\\n\\nAssistant:"`` marker (and the single space after it), as in TRL's hh-rlhf
    script. Raises :class:`~pipelines.errors.ParseError` with reason
    ``not_a_transcript`` or ``prompt_mismatch``.

    Examples
    --------
    >>> split_hh_pair("\\n\\nHuman: Hi\\n\\nAssistant: Hello!", "\\n\\nHuman: Hi\\n\\nAssistant: Go away.")
    ([{'role': 'user', 'content': 'Hi'}], 'Hello!', 'Go away.')
    >>> split_hh_pair("\\n\\nHuman: Hi\\n\\nAssistant: Same", "\\n\\nHuman: Hi\\n\\nAssistant: Same")
    ([{'role': 'user', 'content': 'Hi'}], 'Same', 'Same')
    >>> split_hh_pair("\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c\\n\\nAssistant: d", "\\n\\nHuman: x\\n\\nAssistant: y")
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: prompt_mismatch: the transcripts differ before their last assistant turn
    """
    if not all(t.startswith(HUMAN) and ASSISTANT in t for t in (chosen, rejected)):
        raise ParseError("not_a_transcript: chosen and rejected must both be '\\n\\nHuman: ...\\n\\nAssistant: ...' transcripts", raw=chosen[:200])
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(ASSISTANT)
    if cut < 0:
        raise ParseError("prompt_mismatch: the transcripts differ before their last assistant turn", raw=chosen[:200])
    start = cut + len(ASSISTANT)
    c, r = chosen[start:], rejected[start:]
    if c.startswith(" ") and r.startswith(" "):
        c, r = c[1:], r[1:]
    if HUMAN in c or HUMAN in r or ASSISTANT in c or ASSISTANT in r:
        raise ParseError("prompt_mismatch: the transcripts differ before their last assistant turn", raw=chosen[:200])
    return _turns(chosen[:cut]), c, r


def split_implicit_prompt(chosen: list[dict[str, str]], rejected: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """TRL's ``extract_prompt``: the longest common prefix of two conversations is the prompt.

    >>> c = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    >>> r = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No"}]
    >>> split_implicit_prompt(c, r)[0]
    [{'role': 'user', 'content': 'Hi'}]
    """
    chosen, rejected = as_response_messages(chosen), as_response_messages(rejected)
    k = 0
    while k < min(len(chosen), len(rejected)) - 1 and chosen[k] == rejected[k]:
        k += 1
    # the responses start at the first differing message, or at the last assistant turn
    # of identical conversations
    if k == min(len(chosen), len(rejected)) - 1 and chosen == rejected:
        while k > 0 and chosen[k]["role"] != "assistant":
            k -= 1
    if k == 0:
        raise ParseError("no_shared_prompt: the two conversations share no first message")
    return chosen[:k], chosen[k:], rejected[k:]


def trl_pair(prompt: Any, chosen: Any, rejected: Any) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """One row in any accepted layout -> conversational (prompt, chosen, rejected).

    ``prompt`` is ``None`` when the file has no prompt column. Raises
    :class:`~pipelines.errors.ParseError` whose message starts with the reason.

    >>> trl_pair("Hi", "Hello", "Go away")[2]
    [{'role': 'assistant', 'content': 'Go away'}]
    """
    if chosen is None or rejected is None:
        raise ParseError("empty_pair: chosen or rejected is null")
    if prompt is not None:
        return as_prompt_messages(prompt), as_response_messages(chosen), as_response_messages(rejected)
    if isinstance(chosen, str) and isinstance(rejected, str):
        p, c, r = split_hh_pair(chosen, rejected)
        return p, as_response_messages(c), as_response_messages(r)
    if isinstance(chosen, list) and isinstance(rejected, list):
        return split_implicit_prompt(chosen, rejected)
    raise ParseError("not_a_transcript: chosen and rejected are neither both strings nor both message lists")


def _check_pair_column(schema: pa.Schema, name: str, stage: str) -> None:
    typ = schema.field(name).type
    ok = pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_null(typ)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        item = typ.value_type
        ok = pa.types.is_struct(item) and {"role", "content"} <= {item.field(i).name for i in range(item.num_fields)}
    if not ok:
        raise SchemaError(f"column '{name}' has type {typ}; a pair column is a string or a list of {{role, content}} messages", stage=stage, column=name)


class PairColumns(Stage):
    """TRL conversational ``prompt``/``chosen``/``rejected`` from any accepted pair layout.

    Input: ``chosen``, ``rejected`` (strings or message lists), ``prompt`` if present.
    Output: the three as message lists (``chosen``/``rejected`` hold the response turns
    only), other columns unchanged. Rejected: ``not_a_transcript``, ``prompt_mismatch``,
    ``no_shared_prompt``, ``empty_pair`` (see the module docstring); the start of the
    offending text is in ``reject_raw``.
    """

    requires: ClassVar[Mapping[str, pa.DataType | None]] = {"chosen": None, "rejected": None}
    adds: ClassVar[Mapping[str, pa.DataType]] = {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES}

    def __init__(self) -> None:
        self.params = {}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        names = ["chosen", "rejected"] + (["prompt"] if "prompt" in table.column_names else [])
        for name in names:
            _check_pair_column(table.schema, name, type(self).__name__)
        prompts = table.column("prompt").to_pylist() if "prompt" in names else [None] * table.num_rows
        out: dict[str, list[Any]] = {"prompt": [], "chosen": [], "rejected": []}
        reasons: list[str | None] = []
        raws: list[str | None] = []
        for p, c, r in zip(prompts, table.column("chosen").to_pylist(), table.column("rejected").to_pylist()):
            try:
                triple = trl_pair(p, c, r)
                reasons.append(None)
                raws.append(None)
            except ParseError as exc:
                triple = ([], [], [])
                reasons.append(str(exc).split(":", 1)[0])
                raws.append(exc.raw)
            for key, value in zip(("prompt", "chosen", "rejected"), triple):
                out[key].append(value)
        for key in ("prompt", "chosen", "rejected"):
            table = set_column(table, key, pa.array(out[key], MESSAGES))
        return split_by_reason(table, reasons, raws)
