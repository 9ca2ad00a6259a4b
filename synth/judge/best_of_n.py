"""Best-of-n preference pairs (Magpie's DPO recipe, methods.md 1.10): k sampled responses
scored by a reward model or judge; chosen = the best, rejected = the worst, in TRL's
conversational ``prompt``/``chosen``/``rejected`` format (DPOTrainer takes it unchanged)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.stage import Stage, set_column, split_by_reason
from pipelines.chat_format import MESSAGES


def best_and_worst(scores: list[float | None]) -> tuple[int, int] | None:
    """Indices of the highest and lowest score (first on ties); None if fewer than two scores
    or all equal (a tie teaches nothing)."""
    arr = np.array([np.nan if s is None else s for s in scores], dtype=float)
    if np.sum(~np.isnan(arr)) < 2:
        return None
    hi, lo = int(np.nanargmax(arr)), int(np.nanargmin(arr))
    if arr[hi] == arr[lo]:
        return None
    return hi, lo


class BestOfNPairs(Stage):
    """Input ``instruction``, ``responses`` and their ``rewards``. Adds ``prompt``, ``chosen``,
    ``rejected`` (message lists), ``score_chosen``, ``score_rejected``, ``messages`` (= chosen
    conversation). Rejected: ``tie`` (all scores equal or fewer than two), ``low_margin`` when
    best - worst < ``min_margin``."""

    requires = {"instruction": pa.string(), "responses": pa.list_(pa.string()), "rewards": pa.list_(pa.float64())}
    adds = {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "score_chosen": pa.float64(), "score_rejected": pa.float64(), "messages": MESSAGES}

    def __init__(self, *, min_margin: float = 0.0) -> None:
        if min_margin < 0:
            raise ConfigError(f"min_margin must be >= 0, got {min_margin}")
        self.min_margin = float(min_margin)
        self.params = {"min_margin": min_margin}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        cols = {k: [] for k in self.adds}
        reasons = []
        for ins, rs, sc in zip(*(table.column(c).to_pylist() for c in ("instruction", "responses", "rewards"))):
            prompt = [{"role": "user", "content": ins}]
            pick = best_and_worst(sc or [])
            reason = "tie" if pick is None else ("low_margin" if sc[pick[0]] - sc[pick[1]] < self.min_margin else None)
            hi, lo = pick if pick else (0, 0)
            chosen = [{"role": "assistant", "content": rs[hi] if rs else ""}]
            rejected = [{"role": "assistant", "content": rs[lo] if rs else ""}]
            for k, v in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected), ("score_chosen", sc[hi] if sc else None), ("score_rejected", sc[lo] if sc else None), ("messages", prompt + chosen)):
                cols[k].append(v)
            reasons.append(reason)
        for k, typ in self.adds.items():
            table = set_column(table, k, pa.array(cols[k], typ))
        return split_by_reason(table, reasons)
