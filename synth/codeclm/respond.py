"""CodecLM step 4b: the strong or the target model answers the round's instructions.

Contrastive Filtering (paper §4.3) compares the strong model's answer with the target
model's. One stage per role, each with its own ``model``, so each gets its own engine.
Rows already accepted pass through without a call. An engine error (``prompt_too_long``)
is recorded in ``codeclm_error`` for ``codeclm_decide`` to reject with the round's lineage;
an empty answer is an answer, which the judge scores.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.stage import check_choice, empty_rejected, set_column
from synth.backends.llm_stage import LLMStage
from synth.codeclm.state import ERROR, ROUND, STATUS, first_error, pending_indices, pending_mask, row_seeds, update_pending

ROLES = ("strong", "target")


class CodecRespond(LLMStage):
    """Answer the pending rows' ``instruction`` as ``role`` (``strong`` | ``target``).

    Output: ``response_<role>``. Nothing is rejected here (see the module docstring).
    Sampling: greedy, 1024 tokens (the paper gives no response temperature; greedy as the
    project's other answer stages); a sampled answer is seeded per (row, role, round).
    """

    requires = {"id": pa.string(), "instruction": pa.string(), STATUS: pa.string(), ROUND: pa.int64(), ERROR: pa.string()}
    default_sampling = {"temperature": 0.0, "max_tokens": 1024}

    def __init__(self, *, role: str, system_prompt: str | None = None, seed: int = 0, **llm: Any) -> None:
        super().__init__(**llm)
        check_choice("role", role, ROLES)
        self.role, self.system_prompt, self.seed = role, system_prompt, int(seed)
        self.column = f"response_{role}"
        self.adds = {self.column: pa.string()}
        self.params.update(role=role, system_prompt=system_prompt, seed=seed)

    def models(self) -> dict[str, str]:
        return {self.role: str(self.model)}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        mask = pending_mask(table)
        idx = pending_indices(table)
        ids, instructions, rounds = (table.column(c).to_pylist() for c in ("id", "instruction", ROUND))
        seeds = [row_seeds([ids[i]], self.seed, f"respond:{self.role}:{rounds[i]}")[0] for i in idx]
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        chats = [system + [{"role": "user", "content": instructions[i] or ""}] for i in idx]
        outs = self.engine_llm.chat(chats, self.sampling, seeds=seeds) if chats else []
        texts = [o.text.strip() if not o.error else "" for o in outs]
        errors = [o.error.split(":")[0] if o.error else None for o in outs]
        table = update_pending(table, self.column, texts, pa.string(), mask)
        errs = table.column(ERROR).to_pylist()
        old = [errs[i] for i in idx]
        table = update_pending(table, ERROR, first_error(old, errors), pa.string(), mask)
        return table, empty_rejected(table)
