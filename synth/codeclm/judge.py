"""CodecLM step 4c: the pairwise judge scores strong vs target answers in both orders.

Paper §4.3 and A.3: the scorer is the strong LLM with Vicuna's pairwise prompt (system
"You are a helpful and precise assistant for checking the quality of the answer."), one
line of two 1-10 scores, no explanation. Both orders are judged and each side's two
scores averaged (position bias); the gap is ``G = S(r_s) - S(r_t)``.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.errors import ParseError
from pipelines.stage import check_flag, empty_rejected
from synth.backends.llm_stage import LLMStage
from synth.codeclm.parse import parse_score_pair
from synth.codeclm.prompts import judge_chat
from synth.codeclm.state import ERROR, ROUND, STATUS, first_error, pending_indices, pending_mask, row_seeds, update_pending

SCORE_REGEX = r"(10|[1-9]) (10|[1-9])"
RAW_SEP = "\n-----\n"


def both_orders(a_first: tuple[float, float], b_first: tuple[float, float]) -> tuple[float, float]:
    """Average each side's score over the two orders.

    ``a_first`` = (score of A, score of B) with A shown as Assistant 1; ``b_first`` = (score
    of B, score of A) with B first.

    >>> both_orders((8, 6), (7, 9))
    (8.5, 6.5)
    """
    return (a_first[0] + b_first[1]) / 2, (a_first[1] + b_first[0]) / 2


def judge_texts(strong_first: str, target_first: str) -> tuple[float, float]:
    """Parse both orders' replies into (S(r_s), S(r_t)); a :class:`ParseError` if either fails.

    >>> judge_texts("9 4", "3 8")
    (8.5, 3.5)
    """
    return both_orders(parse_score_pair(strong_first), parse_score_pair(target_first))


class CodecJudge(LLMStage):
    """Score the pending rows' ``response_strong`` and ``response_target``.

    Output: ``score_strong``, ``score_target`` (each averaged over both orders), ``gap``
    (strong minus target) and ``judge_raw`` (both replies). An unreadable reply sets
    ``codeclm_error`` to ``parse_error:judge`` (rejected by ``codeclm_decide``, raw kept).
    Sampling: greedy, 16 tokens (one line of two numbers); a sampling judge is seeded per
    (row, round, order).
    """

    requires = {"id": pa.string(), "instruction": pa.string(), "response_strong": pa.string(), "response_target": pa.string(), STATUS: pa.string(), ROUND: pa.int64(), ERROR: pa.string()}
    adds = {"score_strong": pa.float64(), "score_target": pa.float64(), "gap": pa.float64(), "judge_raw": pa.string()}
    default_sampling = {"temperature": 0.0, "max_tokens": 16}

    def __init__(self, *, structured: bool = False, seed: int = 0, **llm: Any) -> None:
        super().__init__(**llm)
        check_flag("structured", structured)
        self.structured, self.seed = structured, int(seed)
        self.params.update(structured=structured, seed=seed)

    def models(self) -> dict[str, str]:
        return {"judge": str(self.model)}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        mask = pending_mask(table)
        idx = pending_indices(table)
        ids, rounds, q, s, t = (table.column(c).to_pylist() for c in ("id", ROUND, "instruction", "response_strong", "response_target"))
        seeds = [row_seeds([ids[i]], self.seed, f"judge:{rounds[i]}:{order}")[0] for order in ("strong_first", "target_first") for i in idx]
        chats = [judge_chat(q[i] or "", s[i] or "", t[i] or "") for i in idx] + [judge_chat(q[i] or "", t[i] or "", s[i] or "") for i in idx]
        sampling = {**self.sampling, **({"structured_outputs": {"regex": SCORE_REGEX}} if self.structured else {})}
        outs = self.engine_llm.chat(chats, sampling, seeds=seeds) if chats else []
        n = len(idx)
        ss: list[float | None] = []
        st: list[float | None] = []
        raws, errors = [], []
        for a, b in zip(outs[:n], outs[n:]):
            raws.append(f"strong first: {a.text}{RAW_SEP}target first: {b.text}")
            x = y = None
            err = (a.error or b.error or "").split(":")[0] or None
            if err is None:
                try:
                    x, y = judge_texts(a.text, b.text)
                except ParseError:
                    err = "parse_error:judge"
            ss.append(x)
            st.append(y)
            errors.append(err)
        table = update_pending(table, "score_strong", ss, pa.float64(), mask)
        table = update_pending(table, "score_target", st, pa.float64(), mask)
        table = update_pending(table, "gap", [None if x is None else x - y for x, y in zip(ss, st)], pa.float64(), mask)
        table = update_pending(table, "judge_raw", raws, pa.string(), mask)
        errs = table.column(ERROR).to_pylist()
        old = [errs[i] for i in idx]
        table = update_pending(table, ERROR, first_error(old, errors), pa.string(), mask)
        return table, empty_rejected(table)
