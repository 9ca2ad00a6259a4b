"""CodecLM step 4e, Self-Rubrics' improver: rewrite a pending instruction with one action.

Paper §4.2: per round one of the metadata's actions is sampled at random and an
"instruction improver" rewrites the instruction with it (``Improving action: ...``,
``Input instruction: ...``, the answer after ``Improved instruction:``); temperature 0.7.
Rounds 2..depth each start with this stage.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from pipelines.errors import AligncraftError, ConfigError, ParseError
from pipelines.stage import check_flag, split_by_reason
from synth.backends.llm_stage import LLMStage
from synth.codeclm.parse import parse_improved
from synth.codeclm.prompts import improve_chat
from synth.codeclm.state import ERROR, ROUND, STATUS, pending_indices, pending_mask, row_seeds, update_pending

IMPROVE_REGEX = r"Improved instruction: [^\n]{10}[^\n]*"


def sample_action(actions: Sequence[str], seed: int) -> str:
    """One action, uniformly at random, reproducible from ``seed``.

    >>> sample_action(["a", "b", "c", "d"], 7) == sample_action(["a", "b", "c", "d"], 7)
    True
    >>> sample_action(["only"], 3)
    'only'
    """
    if not actions:
        msg = "no actions to sample from"
        raise ValueError(msg)
    return actions[random.Random(seed).randrange(len(actions))]


class CodecImprove(LLMStage):
    """Start round ``round`` (2..depth): rewrite every pending row's instruction.

    Input: ``id``, ``instruction``, ``actions``. Output: ``instruction`` (rewritten),
    ``action`` (the sampled action), ``codeclm_round`` = ``round``; accepted rows pass
    through. Rejected: ``parse_error:improve`` (no ``Improved instruction:``, or empty;
    raw reply kept), ``prompt_too_long``; their ``lineage`` holds the earlier rounds.
    """

    requires = {"id": pa.string(), "instruction": pa.string(), "actions": pa.list_(pa.string()), STATUS: pa.string(), ROUND: pa.int64(), ERROR: pa.string()}
    adds = {"instruction": pa.string(), "action": pa.string(), ROUND: pa.int64(), ERROR: pa.string()}
    default_sampling = {"temperature": 0.7, "max_tokens": 2048}

    def __init__(self, *, round: int, structured: bool = False, seed: int = 0, **llm: Any) -> None:  # noqa: A002
        super().__init__(**llm)
        if not isinstance(round, int) or isinstance(round, bool) or round < 2:
            raise ConfigError(f"round must be an integer >= 2 (round 1 is the basic instruction), got {round!r}")
        check_flag("structured", structured)
        self.round, self.structured, self.seed = round, structured, int(seed)
        self.params.update(round=round, structured=structured, seed=seed)

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        mask = pending_mask(table)
        idx = pending_indices(table)
        ids, ins, acts, rounds = (table.column(c).to_pylist() for c in ("id", "instruction", "actions", ROUND))
        wrong = sorted({rounds[i] for i in idx} - {self.round - 1})
        if wrong:
            msg = f"pending rows are at round {wrong[0]}, this stage starts round {self.round}: the recipe's round stages are out of order"
            raise AligncraftError(msg)
        seeds = row_seeds([ids[i] for i in idx], self.seed, f"improve:{self.round}")
        chosen = [sample_action(acts[i], s) for i, s in zip(idx, seeds)]
        chats = [improve_chat(a, ins[i] or "") for i, a in zip(idx, chosen)]
        sampling = {**self.sampling, **({"structured_outputs": {"regex": IMPROVE_REGEX}} if self.structured else {})}
        outs = self.engine_llm.chat(chats, sampling, seeds=seeds) if chats else []
        new, reasons_p, raws_p = [], [], []
        for out, i in zip(outs, idx):
            text, reason = ins[i], None
            if out.error:
                reason = out.error.split(":")[0]
            else:
                try:
                    text = parse_improved(out.text)
                except ParseError:
                    reason = "parse_error:improve"
            new.append(text)
            reasons_p.append(reason)
            raws_p.append(out.text if reason else None)
        table = update_pending(table, "instruction", new, pa.string(), mask)
        table = update_pending(table, "action", chosen, pa.string(), mask)
        table = update_pending(table, ROUND, [self.round] * len(idx), pa.int64(), mask)
        table = update_pending(table, ERROR, [None] * len(idx), pa.string(), mask)
        reasons: list[str | None] = [None] * table.num_rows
        raws: list[str | None] = [None] * table.num_rows
        for i, r, w in zip(idx, reasons_p, raws_p):
            reasons[i], raws[i] = r, w
        return split_by_reason(table, pa.array(reasons, pa.string()), raw=raws)
