"""Filter presets that reproduce the rules behind Magpie's published filtered subsets.

``data_sft/data_filter.ipynb`` (Qwen2-Pro-300K-Filtered): input_quality in {good, excellent}
AND instruct_reward > -10 AND the instruction does not end with ':' AND the near-duplicate
rule (keep a row iff ``min_similar_uuid`` is null or its own id); then the ``top_k`` rows with
the longest responses (characters). Magpie-Pro/Air-300K-Filtered used quality >= average.
Each rule is a parameter; a rule whose column is absent is an error, not silently skipped.

``min_reward`` is in a reward model's raw units (Magpie: FsfairX-LLaMA3-RM, whose rewards
run roughly -20..+10; the cards keep ``instruct_reward >= -10``). It is refused on a column
that holds another kind of score: ``judge_score`` (an LLM judge's 1-10, which passes -10
every time) at validation, and an ``instruct_reward`` whose ``reward_model`` column says
``judge:...`` (written by older aligncraft runs) when the data arrives.
"""
from __future__ import annotations

from typing import Literal

import polars as pl
import pyarrow as pa

from pipelines.errors import ConfigError, SchemaError
from pipelines.stage import Stage, split_by_reason

QUALITY_ORDER = ["very poor", "poor", "average", "good", "excellent"]
# Columns that do not hold a reward model's raw score: thresholds in reward units mean nothing there.
NOT_REWARDS = {
    "judge_score": "an LLM judge's expected 1-10 score",
    "rewards": "a list of per-sample scores (best-of-n)",
    "score_chosen": "a pair's chosen score",
    "score_rejected": "a pair's rejected score",
}


class MagpieFilter(Stage):
    """Global stage. Reasons, in order of checking: ``low_quality``, ``low_reward``,
    ``incomplete_instruction``, ``duplicate_of:<id>``, ``not_in_top_k``."""

    is_global = True

    def __init__(self, *, min_quality: Literal["very poor", "poor", "average", "good", "excellent"] | None = "good", min_reward: float | None = -10.0, reward_column: str = "instruct_reward", drop_incomplete: bool = True, dedup: bool = True, top_k: int | None = None, sort_by: str = "response") -> None:
        if min_quality is not None and min_quality not in QUALITY_ORDER:
            raise ConfigError(f"min_quality must be one of {QUALITY_ORDER}, got {min_quality!r}")
        if min_reward is not None and reward_column in NOT_REWARDS:
            msg = f"min_reward={min_reward} is a reward model's raw score, but '{reward_column}' holds {NOT_REWARDS[reward_column]}"
            raise ConfigError(msg, hint="score with a reward model (reward_score with reward_model: sfairXC/FsfairX-LLaMA3-RM-v0.1) to get instruct_reward, or set min_reward: null")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ConfigError(f"top_k must be a positive integer, got {top_k!r}")
        self.min_quality, self.min_reward, self.reward_column = min_quality, min_reward, reward_column
        self.drop_incomplete, self.dedup, self.top_k, self.sort_by = drop_incomplete, dedup, top_k, sort_by
        self.params = dict(min_quality=min_quality, min_reward=min_reward, reward_column=reward_column, drop_incomplete=drop_incomplete, dedup=dedup, top_k=top_k, sort_by=sort_by)
        req: dict[str, pa.DataType | None] = {"id": pa.string(), "instruction": pa.string()}
        if min_quality is not None:
            req["input_quality"] = pa.string()
        if min_reward is not None:
            req[reward_column] = None
        if dedup:
            req["min_similar_uuid"] = pa.string()
        if top_k is not None:
            req[sort_by] = pa.string()
        self.requires = req

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        if self.min_reward is not None and "reward_model" in df.columns:
            judged = df.with_row_index("__row").filter(pl.col("reward_model").str.starts_with("judge:"))
            if judged.height:
                row = judged.row(0, named=True)
                msg = f"column '{self.reward_column}' of row {row['__row']} (id {row.get('id')}) was scored by {row['reward_model']}, an LLM judge, not a reward model: min_reward={self.min_reward} would keep every row"
                raise SchemaError(msg, column=self.reward_column, hint="rescore with a reward model (reward_score with reward_model: ...), or set min_reward: null")
        reason = pl.lit(None, dtype=pl.Utf8)
        rules: list[tuple[pl.Expr, pl.Expr]] = []
        if self.min_quality is not None:
            ok = pl.col("input_quality").is_in(QUALITY_ORDER[QUALITY_ORDER.index(self.min_quality):])
            rules.append((~ok.fill_null(False), pl.lit("low_quality")))
        if self.min_reward is not None:
            rules.append((~(pl.col(self.reward_column) > self.min_reward).fill_null(False), pl.lit("low_reward")))
        if self.drop_incomplete:
            rules.append((pl.col("instruction").str.strip_chars().str.ends_with(":").fill_null(False), pl.lit("incomplete_instruction")))
        if self.dedup:
            dup = pl.col("min_similar_uuid").is_not_null() & (pl.col("min_similar_uuid") != pl.col("id"))
            rules.append((dup, pl.lit("duplicate_of:") + pl.col("min_similar_uuid")))
        for cond, why in reversed(rules):
            reason = pl.when(cond).then(why).otherwise(reason)
        df = df.with_row_index("__pos").with_columns(reason.alias("__reason"))
        if self.top_k is not None:
            ranked = df.filter(pl.col("__reason").is_null()).with_columns(pl.col(self.sort_by).str.len_chars().alias("__len")).sort(["__len", "__pos"], descending=[True, False])
            over = ranked.slice(self.top_k)["__pos"]
            df = df.with_columns(pl.when(pl.col("__pos").is_in(over.implode())).then(pl.lit("not_in_top_k")).otherwise(pl.col("__reason")).alias("__reason"))
        return split_by_reason(table, df["__reason"].to_arrow().cast(pa.string()))
