"""Magpie's LLM tags (``exp/unitag.py``): difficulty (+ intent, knowledge), input quality
(+ explanation), task category (+ other categories).

Magpie tags with Llama-3-8B-Instruct at temperature 0, assistant turn prefilled with ``{``,
stop at ``}``. Here the default is JSON-schema structured output (the engine cannot emit an
invalid enum) on every backend: vLLM enforces the schema, and the transformers backend (the
fallback without vLLM) answers a ``json`` request with exactly Magpie's prefill-and-stop, so
the same recipe runs on both; ``mode: prefill`` asks for Magpie's method by name. An output that does
not parse is never a silent None: by default the row is rejected (``parse_error:<tag>``, raw
text kept); with ``on_parse_error: null`` the row stays with null tags and the reason in
``<tag>_error``.
"""
from __future__ import annotations

from typing import Any, Callable, Literal

import pyarrow as pa

from pipelines.errors import ConfigError, ParseError
from pipelines.stage import set_column, split_by_reason
from synth.magpie import tag_prompts as P
from synth.backends.llm_stage import LLMStage

TAGS: dict[str, tuple[Callable[[str], str], dict[str, Any], Callable[[str], dict[str, Any]], dict[str, pa.DataType]]] = {
    "difficulty": (P.difficulty_prompt, P.DIFFICULTY_SCHEMA, P.parse_difficulty, {"intent": pa.string(), "knowledge": pa.string(), "difficulty": pa.string()}),
    "quality": (P.quality_prompt, P.QUALITY_SCHEMA, P.parse_quality, {"input_quality": pa.string(), "quality_explanation": pa.string()}),
    "category": (P.category_prompt, P.CATEGORY_SCHEMA, P.parse_category, {"task_category": pa.string(), "other_task_category": pa.list_(pa.string())}),
}


class MagpieTag(LLMStage):
    """Tag each instruction with one of ``difficulty``, ``quality``, ``category``.

    Adds the Magpie columns of that tag plus ``<tag>_generator`` (the model). Rejected:
    ``parse_error:<tag>`` (raw text kept), ``prompt_too_long``.
    """

    requires = {"instruction": pa.string()}
    default_sampling = {"temperature": 0.0, "max_tokens": 200}

    def __init__(self, *, tag: Literal["difficulty", "quality", "category"], mode: Literal["structured", "prefill"] = "structured", on_parse_error: Literal["reject", "null"] = "reject", **llm: Any) -> None:
        super().__init__(**llm)
        if tag not in TAGS:
            raise ConfigError(f"tag must be one of {', '.join(TAGS)}, got {tag!r}")
        if mode not in ("structured", "prefill"):
            raise ConfigError(f"mode must be 'structured' or 'prefill', got {mode!r}")
        if on_parse_error not in ("reject", "null"):
            raise ConfigError(f"on_parse_error must be 'reject' or 'null', got {on_parse_error!r}")
        self.tag, self.mode, self.on_parse_error = tag, mode, on_parse_error
        self.params.update(tag=tag, mode=mode, on_parse_error=on_parse_error)
        self.columns = TAGS[tag][3]
        self.adds = {**self.columns, f"{tag}_generator": pa.string(), **({f"{tag}_error": pa.string()} if on_parse_error == "null" else {})}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        make_prompt, schema, parse, columns = TAGS[self.tag]
        chats = [[{"role": "user", "content": make_prompt(t or "")}] for t in table.column("instruction").to_pylist()]
        if self.mode == "structured":
            outs = self.engine_llm.chat(chats, {**self.sampling, "structured_outputs": {"json": schema}})
            texts = [o.text for o in outs]
        else:
            prefilled = [c + [{"role": "assistant", "content": "{"}] for c in chats]
            outs = self.engine_llm.chat(prefilled, {**self.sampling, "stop": ["}"], "include_stop_str_in_output": True}, continue_final_message=True)
            texts = ["{" + o.text for o in outs]
        values: dict[str, list[Any]] = {c: [] for c in columns}
        reasons: list[str | None] = []
        errors: list[str | None] = []
        for out, text in zip(outs, texts):
            reason = None
            if out.error:
                reason, parsed = out.error.split(":")[0], {}
            else:
                try:
                    parsed = parse(text)
                except ParseError:
                    reason, parsed = f"parse_error:{self.tag}", {}
            for c in columns:
                values[c].append(parsed.get(c))
            if reason and self.on_parse_error == "null" and reason.startswith("parse_error"):
                errors.append(reason)
                reason = None
            else:
                errors.append(None)
            reasons.append(reason)
        for c, typ in columns.items():
            table = set_column(table, c, pa.array(values[c], typ))
        table = set_column(table, f"{self.tag}_generator", pa.array([self.engine_llm.name] * table.num_rows, pa.string()))
        if self.on_parse_error == "null":
            table = set_column(table, f"{self.tag}_error", pa.array(errors, pa.string()))
        return split_by_reason(table, reasons, raw=texts)
