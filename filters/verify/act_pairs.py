"""ACT preference pairs (Wang et al., arXiv 2403.06326; methods.md 4.1): sampled responses
ranked by constraint satisfaction rate, the best against the worst.

ACT labels ``y_i > y_j`` iff ``CSR_i > CSR_j``; ties teach nothing, so a prompt whose
responses all satisfy the same share of constraints gives no pair. Output is TRL's
conversational ``prompt``/``chosen``/``rejected`` format (DPOTrainer takes it unchanged).
The pairing rule is :mod:`pipelines.pairs`, shared with Magpie's best-of-n pairs:

>>> from pipelines.pairs import best_and_worst
>>> best_and_worst([0.5, 1.0, 0.5], ["a", "b", "c"])
(1, 0)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pyarrow as pa

from pipelines.chat_format import MESSAGES
from pipelines.errors import ConfigError
from pipelines.pairs import pair_columns
from pipelines.stage import Stage, set_column, split_by_reason

__all__ = ["ActPairs"]


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
        columns, reasons = pair_columns(*(table.column(c).to_pylist() for c in (self.prompt_column, "responses", "constraint_satisfaction")),
                                        score_name="csr", min_margin=self.min_margin)
        for k, typ in self.adds.items():
            table = set_column(table, k, columns[k], typ)
        return split_by_reason(table, reasons)
