"""Magpie's multi-turn extension (``exp/gen_mt.py``, methods.md 1.6): follow-up user turns
written by the model itself from the history, each answered greedily.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.chat_format import MESSAGES
from pipelines.errors import ConfigError
from pipelines.stage import set_column, split_by_reason
from synth.backends.llm_stage import LLMStage
from synth.magpie.sanitize import leaked_template
from synth.magpie.system_prompts import MT_SYSTEM_PROMPT
from synth.magpie.template import mt_pre_query_template, stop_strings

__all__ = ["MagpieTurns"]


class MagpieTurns(LLMStage):
    """Extend single-turn rows to ``num_turns`` turns (Magpie ``exp/gen_mt.py``).

    For each new turn the model sees the history under Magpie's multi-turn system prompt and
    writes the next user message (temperature 1.0, first line); the response is generated
    from the history without that system prompt (greedy). Output: ``instruction_<k>``,
    ``response_<k>`` for k = 2..num_turns and the full ``messages``. A row whose follow-up
    comes out empty or leaks template tokens is rejected (``empty_turn:<k>``,
    ``template_leak:<k>``) with the raw text.
    """

    requires = {"instruction": pa.string(), "response": pa.string()}

    def __init__(self, *, num_turns: int = 2, temperature: float = 1.0, top_p: float = 1.0, max_tokens: int = 256, response_max_tokens: int = 512, mt_system_prompt: bool = True, **llm: Any) -> None:
        super().__init__(**llm)
        if not isinstance(num_turns, int) or num_turns < 2:
            raise ConfigError(f"num_turns must be an integer >= 2, got {num_turns!r}")
        self.num_turns = num_turns
        self.temperature, self.top_p, self.max_tokens, self.response_max_tokens = float(temperature), float(top_p), int(max_tokens), int(response_max_tokens)
        self.mt_system_prompt = mt_system_prompt
        self.params.update(num_turns=num_turns, temperature=temperature, top_p=top_p, max_tokens=max_tokens, response_max_tokens=response_max_tokens, mt_system_prompt=mt_system_prompt)
        self.adds = {"messages": MESSAGES, **{f"{kind}_{k}": pa.string() for k in range(2, num_turns + 1) for kind in ("instruction", "response")}}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        llm = self.engine_llm
        tok = llm.tokenizer
        stop, stop_ids = stop_strings(tok)
        rows = table.select(["instruction", "response"]).to_pylist()
        convs = [[{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["response"]}] for r in rows]
        reasons: list[str | None] = [None] * len(rows)
        raws: list[str | None] = [None] * len(rows)
        seeds = table.column("row_seed").to_pylist() if "row_seed" in table.column_names else None
        cols: dict[str, list[str]] = {}
        for k in range(2, self.num_turns + 1):
            live = [i for i, r in enumerate(reasons) if r is None]
            prompts = [mt_pre_query_template(tok, convs[i], system_prompt=_mt_system(self.mt_system_prompt)) for i in live]
            ins_sampling = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens, "stop": stop + ["\n"], "stop_token_ids": stop_ids, "skip_special_tokens": True}
            outs = llm.generate(prompts, ins_sampling, seeds=[seeds[i] * 31 + k for i in live] if seeds else None)
            ins = [""] * len(rows)
            for i, out in zip(live, outs):
                text = out.text.strip()
                if out.error or not text or leaked_template(text, stop):
                    reasons[i] = (out.error.split(":")[0] if out.error else "empty_turn" if not text else "template_leak") + f":{k}"
                    raws[i] = out.text
                else:
                    ins[i] = text
                    convs[i].append({"role": "user", "content": text})
            live = [i for i in live if reasons[i] is None]
            res_out = llm.chat([convs[i] for i in live], {**self.sampling, "temperature": 0.0, "max_tokens": self.response_max_tokens})
            res = [""] * len(rows)
            for i, out in zip(live, res_out):
                text = out.text.strip()
                if out.error or not text:
                    reasons[i] = (out.error.split(":")[0] if out.error else "empty_response") + f":{k}"
                    raws[i] = out.text
                else:
                    res[i] = text
                    convs[i].append({"role": "assistant", "content": text})
            cols[f"instruction_{k}"], cols[f"response_{k}"] = ins, res
        for name, values in cols.items():
            table = set_column(table, name, pa.array(values, pa.string()))
        table = set_column(table, "messages", pa.array(convs, MESSAGES))
        return split_by_reason(table, reasons, raw=raws)


def _mt_system(enabled: bool) -> str | None:
    return MT_SYSTEM_PROMPT if enabled else None
