"""ACT preference pairs (Wang et al., arXiv 2403.06326; methods.md 4.1): sampled responses
ranked by constraint satisfaction rate, the best against the worst.

ACT labels ``y_i > y_j`` iff ``CSR_i > CSR_j``; ties teach nothing, so a prompt whose
responses all satisfy the same share of constraints gives no pair. Output is TRL's
conversational ``prompt``/``chosen``/``rejected`` format (DPOTrainer takes it unchanged).

>>> act_pick(["a", "b", "c"], [0.5, 1.0, 0.5])
(1, 0)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.stage import Stage, set_column, split_by_reason
from pipelines.chat_format import MESSAGES

__all__ = ["ActPairs", "act_pick"]


def act_pick(responses: Sequence[str | None], csrs: Sequence[float | None]) -> tuple[int, int] | None:
    """Indices of the highest- and lowest-CSR responses (the first of each on ties).

    Blank responses and missing CSRs take no part. ``None`` when fewer than two remain.

    >>> act_pick(["x", "", "y"], [0.0, 1.0, 0.5])
    (2, 0)
    >>> act_pick(["x", "y"], [1.0, None]) is None
    True
    """
    pool = [i for i, (r, c) in enumerate(zip(responses, csrs)) if c is not None and r is not None and r.strip()]
    if len(pool) < 2:
        return None
    hi = max(pool, key=lambda i: (csrs[i], -i))
    lo = min(pool, key=lambda i: (csrs[i], i))
    return hi, lo


class ActPairs(Stage):
    """Best- vs worst-CSR response per prompt.

    Input: ``prompt_column`` (default ``instruction``), ``responses`` and
    ``constraint_satisfaction`` (list<float64>, from ``verify_constraints`` on
    ``responses``). Output: ``prompt`` ([user message]), ``chosen`` and ``rejected``
    ([assistant message]), ``csr_chosen``, ``csr_rejected``, ``messages`` (the chosen
    conversation, for SFT); the verification columns (``instruction_id_list``, ``kwargs``,
    ``follow_instruction_list``, ``constraint_satisfaction``) stay as they are.

    Rejected: ``too_few_responses`` (fewer than two non-blank responses), ``tie`` (all
    CSRs equal: ACT's "ties are uninformative"), ``low_margin`` (best - worst <
    ``min_margin``). The default ``min_margin: 0`` keeps every pair whose CSRs differ,
    ACT's rule (pairs iff ``CSR_i > CSR_j``); raise it to keep clear wins only, e.g.
    ``0.5``: the chosen response satisfies at least half of the constraints more.
    """

    adds: ClassVar[Mapping[str, pa.DataType]] = {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "csr_chosen": pa.float64(), "csr_rejected": pa.float64(), "messages": MESSAGES}
    version = "1"

    def __init__(self, *, prompt_column: str = "instruction", min_margin: float = 0.0) -> None:
        if isinstance(min_margin, bool) or not isinstance(min_margin, (int, float)) or not 0 <= min_margin <= 1:
            msg = f"min_margin must be a number in [0, 1] (CSRs are rates), got {min_margin!r}"
            raise ConfigError(msg)
        self.prompt_column, self.min_margin = prompt_column, float(min_margin)
        self.params = {"prompt_column": prompt_column, "min_margin": self.min_margin}
        self.requires = {prompt_column: pa.string(), "responses": pa.list_(pa.string()), "constraint_satisfaction": pa.list_(pa.float64())}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        cols: dict[str, list] = {k: [] for k in self.adds}
        reasons: list[str | None] = []
        rows = zip(*(table.column(c).to_pylist() for c in (self.prompt_column, "responses", "constraint_satisfaction")))
        for prompt_text, responses, csrs in rows:
            responses, csrs = responses or [], csrs or []
            pick = act_pick(responses, csrs)
            if pick is None:
                reason = "too_few_responses"
            elif csrs[pick[0]] == csrs[pick[1]]:
                reason = "tie"
            elif csrs[pick[0]] - csrs[pick[1]] < self.min_margin:
                reason = "low_margin"
            else:
                reason = None
            hi, lo = pick or (0, 0)
            prompt = [{"role": "user", "content": prompt_text or ""}]
            chosen = [{"role": "assistant", "content": responses[hi] if responses else ""}]
            rejected = [{"role": "assistant", "content": responses[lo] if responses else ""}]
            values = (prompt, chosen, rejected, csrs[hi] if pick else None, csrs[lo] if pick else None, prompt + chosen)
            for k, v in zip(self.adds, values):
                cols[k].append(v)
            reasons.append(reason)
        for k, typ in self.adds.items():
            table = set_column(table, k, pa.array(cols[k], typ))
        return split_by_reason(table, reasons)
