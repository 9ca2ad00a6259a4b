"""CodecLM's optional check of mixed metadata: is this (use case, skills) pair reasonable?

The paper removed unreasonable mixed pairs by hand (A.2). This stage asks an LLM instead,
once per distinct mixed metadata in a batch; seed metadata pass unchecked. Off in the
default recipe (the paper's own pool had no LLM check); add it after ``codeclm_metadata``.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from pipelines.errors import ParseError
from pipelines.stage import check_flag, split_by_reason
from synth.backends.llm_stage import LLMStage
from synth.codeclm.prompts import sanity_chat

_ANSWER = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def parse_yes_no(text: str) -> bool:
    """The first word, yes or no.

    >>> parse_yes_no("Yes, it could."), parse_yes_no(" no.")
    (True, False)
    >>> parse_yes_no("Maybe")
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: not a yes/no answer: 'Maybe'
    """
    m = _ANSWER.match(text or "")
    if m is None:
        raise ParseError(f"not a yes/no answer: {(text or '').strip()[:40]!r}", raw=text)
    return m.group(1).lower() == "yes"


class CodecSanity(LLMStage):
    """Reject slots whose mixed metadata the model finds unreasonable.

    Input: ``use_case``, ``skills``, ``metadata_id``, ``metadata_origin``. Rejected:
    ``unreasonable_metadata``, ``parse_error:sanity`` (raw reply kept), ``prompt_too_long``.
    Sampling: greedy, 4 tokens.
    """

    requires = {"use_case": pa.string(), "skills": pa.list_(pa.string()), "metadata_id": pa.string(), "metadata_origin": pa.string()}
    default_sampling = {"temperature": 0.0, "max_tokens": 4}

    def __init__(self, *, structured: bool = False, **llm: Any) -> None:
        super().__init__(**llm)
        check_flag("structured", structured)
        self.structured = structured
        self.params.update(structured=structured)

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        rows = table.select(["use_case", "skills", "metadata_id", "metadata_origin"]).to_pylist()
        first: dict[str, int] = {}
        for i, r in enumerate(rows):
            if r["metadata_origin"] == "mixed":
                first.setdefault(r["metadata_id"], i)
        mids = list(first)
        sampling = {**self.sampling, **({"structured_outputs": {"choice": ["yes", "no"]}} if self.structured else {})}
        outs = self.engine_llm.chat([sanity_chat(rows[first[m]]["use_case"], rows[first[m]]["skills"]) for m in mids], sampling) if mids else []
        verdict: dict[str, tuple[str | None, str]] = {}
        for mid, out in zip(mids, outs):
            if out.error:
                verdict[mid] = (out.error.split(":")[0], out.text)
                continue
            try:
                verdict[mid] = (None if parse_yes_no(out.text) else "unreasonable_metadata", out.text)
            except ParseError:
                verdict[mid] = ("parse_error:sanity", out.text)
        reasons = [verdict.get(r["metadata_id"], (None, ""))[0] if r["metadata_origin"] == "mixed" else None for r in rows]
        raws = [verdict[r["metadata_id"]][1] if reason else None for r, reason in zip(rows, reasons)]
        return split_by_reason(table, reasons, raw=raws)
