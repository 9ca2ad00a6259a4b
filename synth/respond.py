"""Answer prompts with an LLM: SFT responses (greedy by default, as Magpie) and k sampled
responses per prompt for preference construction (best-of-n, ACT)."""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.stage import set_column, split_by_reason
from pipelines.chat_format import MESSAGES, prompt_messages
from synth.backends.llm import check_sampling
from synth.backends.llm_stage import LLMStage


class Respond(LLMStage):
    """Generate one response per row.

    Input: ``column`` (``instruction`` text, or ``messages``). Output: ``response`` and
    ``messages`` (the conversation with the answer appended). Rejected: ``prompt_too_long``,
    ``empty_response`` (raw text kept), ``truncated`` when ``drop_truncated`` and the answer hit
    ``max_tokens``. Defaults: Magpie's response settings (temperature 0, top_p 1, max 4096 tokens).
    """

    default_sampling = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 1024}
    adds = {"response": pa.string(), "messages": MESSAGES}

    def __init__(self, *, column: str = "instruction", system_prompt: str | None = None, drop_truncated: bool = False, **llm: Any) -> None:
        super().__init__(**llm)
        self.column = column
        self.system_prompt = system_prompt
        self.drop_truncated = drop_truncated
        self.params.update(column=column, system_prompt=system_prompt, drop_truncated=drop_truncated)
        self.requires = {column: None}

    def chats(self, table: pa.Table) -> list[list[dict[str, str]]]:
        rows = table.select([c for c in (self.column, "input") if c in table.column_names]).to_pylist()
        chats = [prompt_messages(r, self.column) for r in rows]
        if self.system_prompt:
            chats = [[{"role": "system", "content": self.system_prompt}] + [m for m in c if m["role"] != "system"] for c in chats]
        return chats

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        chats = self.chats(table)
        outs = self.engine_llm.chat(chats, self.sampling)
        texts, reasons, convs = [], [], []
        for chat, out in zip(chats, outs):
            text = out.text.strip() if not out.error else ""
            reason = out.error.split(":")[0] if out.error else None
            if reason is None and not text:
                reason = "empty_response"
            if reason is None and self.drop_truncated and out.completions[0].finish_reason == "length":
                reason = "truncated"
            texts.append(text if not out.error else out.text)
            reasons.append(reason)
            convs.append(chat + [{"role": "assistant", "content": text}])
        table = set_column(table, "response", pa.array(texts, pa.string()))
        table = set_column(table, "messages", pa.array(convs, MESSAGES))
        return split_by_reason(table, reasons, raw=texts)


class SampleResponses(Respond):
    """Sample ``k`` responses per prompt (temperature 0.8 as Magpie's DPO recipe) into a
    ``responses`` list column. Rows where every sample failed are rejected (``no_response``)."""

    default_sampling = {"temperature": 0.8, "top_p": 1.0, "max_tokens": 1024}
    adds = {"responses": pa.list_(pa.string())}

    def __init__(self, *, k: int = 5, **kw: Any) -> None:
        if not isinstance(k, int) or k < 2:
            raise ConfigError(f"k must be an integer >= 2 (pairs need two responses), got {k!r}")
        super().__init__(**kw)
        self.k = k
        self.params["k"] = k
        self.sampling = check_sampling({**self.sampling, "n": k}, where="sample_responses.sampling")  # n > 1 at temperature 0 fails here, before any model loads

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        chats = self.chats(table)
        seeds = table.column("row_seed").to_pylist() if "row_seed" in table.column_names else None
        outs = self.engine_llm.chat(chats, self.sampling, seeds=seeds)
        responses, reasons = [], []
        for out in outs:
            texts = [c.text.strip() for c in out.completions]
            responses.append(texts)
            if out.error:
                reasons.append(out.error.split(":")[0])
            elif sum(bool(t) for t in texts) < 2:
                reasons.append("no_response")
            else:
                reasons.append(None)
        table = set_column(table, "responses", pa.array(responses, pa.list_(pa.string())))
        return split_by_reason(table, reasons, raw=["\n\n-----\n\n".join(r) for r in responses])
