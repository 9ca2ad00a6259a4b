"""The constraint extraction stage (ACT, methods.md 4.1): instructions -> typed IFEval constraints.

The rules are :mod:`filters.verify.rules` (one per IFEval id, validated against the
IFEval registry); the LLM fallback for rows where no rule fired is
:mod:`filters.verify.extract_llm`. This module wires them to columns.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import pyarrow as pa

from filters.verify.rules import Constraint, extract_constraints
from pipelines.errors import ConfigError, ParseError
from pipelines.stage import check_choice, check_flag, set_column, split_by_reason
from synth.backends.llm_stage import LLMStage

__all__ = ["ExtractConstraints", "constraints_to_columns"]


def constraints_to_columns(constraints: list[Constraint]) -> tuple[list[str], str]:
    """``instruction_id_list`` and the ``kwargs`` JSON string (a list of dicts, as IFEval stores it).

    >>> constraints_to_columns([Constraint("punctuation:no_comma", {}), Constraint("detectable_format:title", {})])
    (['punctuation:no_comma', 'detectable_format:title'], '[{}, {}]')
    """
    return [c.instruction_id for c in constraints], json.dumps([c.kwargs for c in constraints], ensure_ascii=False)


class ExtractConstraints(LLMStage):
    """Extract typed constraints from each row's instruction (ACT's constraint extraction).

    Rules first (:func:`extract_constraints`); with ``use_llm: true`` rows where no rule
    fired go to the LLM, which answers a JSON schema listing ``{instruction_id, kwargs}``
    items (:mod:`filters.verify.extract_llm`); its items are validated like the rules'.

    Input: ``column`` (default ``instruction``). Output: ``instruction_id_list``
    (list<string>) and ``kwargs``: a JSON **string** per row holding a list of dicts, one
    per id, exactly as IFEval's ``input_data.jsonl`` stores them (a string, because Arrow
    would otherwise widen every dict to the union of all kwarg names);
    :class:`~filters.verify.verify_constraints.VerifyConstraints` reads either form. Also
    ``constraint_source`` (``rules`` | ``llm``).

    Rejected: ``no_constraints`` (nothing found; ``on_no_constraints: keep`` keeps the row
    with empty lists), ``parse_error:constraints`` with the raw LLM text when its output
    is invalid (``on_parse_error: fallback`` keeps the rules' result, empty, instead and
    applies the ``no_constraints`` rule), ``prompt_too_long``.

    The LLM answers with structured output: backend ``vllm`` or ``openai`` (a server that
    supports it), not ``transformers``. Without ``use_llm`` the stage loads no model and
    runs on CPU workers like any filter.
    """

    adds: ClassVar[Mapping[str, pa.DataType]] = {"instruction_id_list": pa.list_(pa.string()), "kwargs": pa.string(), "constraint_source": pa.string()}
    default_sampling: ClassVar[dict[str, Any]] = {"temperature": 0.0, "max_tokens": 512}
    version = "1"

    def __init__(
        self,
        *,
        column: str = "instruction",
        use_llm: bool = False,
        on_no_constraints: Literal["reject", "keep"] = "reject",
        on_parse_error: Literal["reject", "fallback"] = "reject",
        **llm: Any,
    ) -> None:
        super().__init__(**llm)
        check_choice("on_no_constraints", on_no_constraints, ("reject", "keep"))
        check_choice("on_parse_error", on_parse_error, ("reject", "fallback"))
        check_flag("use_llm", use_llm)
        if use_llm and self.backend == "transformers":
            msg = "use_llm needs JSON-schema structured output, which the transformers backend lacks"
            raise ConfigError(msg, hint="use backend: vllm, or an OpenAI-compatible server (backend: openai)")
        self.column, self.use_llm = column, use_llm
        self.on_no_constraints, self.on_parse_error = on_no_constraints, on_parse_error
        self.params.update(column=column, use_llm=use_llm, on_no_constraints=on_no_constraints, on_parse_error=on_parse_error)
        self.requires = {column: pa.string()}
        # Rules alone need no engine: run as a CPU stage (workers), load nothing.
        self.needs_llm = use_llm  # type: ignore[misc]

    def load(self) -> None:
        if self.use_llm:
            super().load()

    def models(self) -> dict[str, str]:
        return super().models() if self.use_llm else {}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        texts = [t or "" for t in table.column(self.column).to_pylist()]
        found = [extract_constraints(t) for t in texts]
        sources = ["rules"] * len(texts)
        reasons: list[str | None] = [None] * len(texts)
        raws: list[str | None] = [None] * len(texts)
        todo = [i for i, f in enumerate(found) if not f] if self.use_llm else []
        if todo:
            from filters.verify.extract_llm import (
                CONSTRAINTS_SCHEMA,
                extraction_prompt,
                parse_constraints,
            )

            chats = [[{"role": "user", "content": extraction_prompt(texts[i])}] for i in todo]
            outs = self.engine_llm.chat(chats, {**self.sampling, "structured_outputs": {"json": CONSTRAINTS_SCHEMA}})
            for i, out in zip(todo, outs):
                if out.error:
                    reasons[i], raws[i] = out.error.split(":")[0], out.text
                    continue
                try:
                    found[i], sources[i] = parse_constraints(out.text), "llm"
                except ParseError:
                    if self.on_parse_error == "reject":
                        reasons[i], raws[i] = "parse_error:constraints", out.text
        for i, f in enumerate(found):
            if reasons[i] is None and not f and self.on_no_constraints == "reject":
                reasons[i] = "no_constraints"
        columns = [constraints_to_columns(f) for f in found]
        table = set_column(table, "instruction_id_list", pa.array([c[0] for c in columns], pa.list_(pa.string())))
        table = set_column(table, "kwargs", pa.array([c[1] for c in columns], pa.string()))
        table = set_column(table, "constraint_source", pa.array(sources, pa.string()))
        return split_by_reason(table, reasons, raw=raws)
