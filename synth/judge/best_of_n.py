"""Best-of-n preference pairs (Magpie's DPO recipe, methods.md 1.10): k sampled responses
scored by a reward model or judge; chosen = the best, rejected = the worst, in TRL's
conversational ``prompt``/``chosen``/``rejected`` format (DPOTrainer takes it unchanged).
The pairing rule is :mod:`pipelines.pairs`, shared with ACT's constraint pairs."""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pyarrow as pa

from pipelines.chat_format import MESSAGES
from pipelines.errors import ConfigError
from pipelines.pairs import pair_columns
from pipelines.stage import Stage, set_column, split_by_reason

__all__ = ["BestOfNPairs"]


class BestOfNPairs(Stage):
    """Input ``instruction``, ``responses`` and their ``rewards``. Adds ``prompt``, ``chosen``,
    ``rejected`` (message lists), ``score_chosen``, ``score_rejected``, ``messages`` (= chosen
    conversation). Responses with a null reward or blank text take no part.

    Rejected: ``too_few_responses`` (fewer than two scored, non-blank responses), ``tie``
    (all their scores equal), ``low_margin`` when best - worst < ``min_margin``."""

    requires: ClassVar[Mapping[str, pa.DataType]] = {"instruction": pa.string(), "responses": pa.list_(pa.string()), "rewards": pa.list_(pa.float64())}
    adds: ClassVar[Mapping[str, pa.DataType]] = {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "score_chosen": pa.float64(), "score_rejected": pa.float64(), "messages": MESSAGES}

    def __init__(self, *, min_margin: float = 0.0) -> None:
        if min_margin < 0:
            raise ConfigError(f"min_margin must be >= 0, got {min_margin}")
        self.min_margin = float(min_margin)
        self.params = {"min_margin": min_margin}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        columns, reasons = pair_columns(*(table.column(c).to_pylist() for c in ("instruction", "responses", "rewards")),
                                        score_name="score", min_margin=self.min_margin)
        for k, typ in self.adds.items():
            table = set_column(table, k, columns[k], typ)
        return split_by_reason(table, reasons)
