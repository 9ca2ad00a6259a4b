"""Per-model rating columns for the dataset card.

The card renders a histogram for every numeric column of the final table, and ratings live
in per-completion list columns. This stage adds, per row, one float column per (score,
pool model): the mean of that model's scores among the row's completions (``null`` when
the model has no scored completion in the row), named ``<score>__<model>``, e.g.
``rating_honesty__pool_a``. The card groups them by score and model.
"""
from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.stage import Stage, empty_rejected, set_column
from synth.judge.ultrafeedback.annotate import rating_column
from synth.judge.ultrafeedback.pool import COMPLETIONS
from synth.judge.ultrafeedback.templates import ASPECTS

DEFAULT_SCORES = (*(rating_column(a) for a in ASPECTS), "overall_score")


def per_model_means(table: pa.Table, scores: Sequence[str], models: Sequence[str]) -> dict[str, pa.Array]:
    """``<score>__<model>`` -> per-row mean of that model's scores (null if none).

    >>> t = pa.table({"completions": pa.array([[{"model": "a", "principle": "", "system_prompt": "", "text": "x"}, {"model": "b", "principle": "", "system_prompt": "", "text": "y"}]], COMPLETIONS),
    ...               "s": pa.array([[4.0, None]], pa.list_(pa.float64()))})
    >>> {k: v.to_pylist() for k, v in per_model_means(t, ["s"], ["a", "b"]).items()}
    {'s__a': [4.0], 's__b': [None]}
    """
    import polars as pl

    n = table.num_rows
    df = pl.from_arrow(table.select(["completions", *scores]).append_column("_row", pa.array(range(n), pa.int64())))
    df = df.with_columns(pl.col("completions").list.eval(pl.element().struct.field("model")).alias("_model"))
    long = df.select("_row", "_model", *scores).explode(["_model", *scores])
    means = long.group_by("_row", "_model").agg([pl.col(s).cast(pl.Float64).mean() for s in scores])
    base = pl.DataFrame({"_row": range(n)}, schema={"_row": pl.Int64})
    out = {}
    for m in models:
        sub = base.join(means.filter(pl.col("_model") == m), on="_row", how="left").sort("_row")
        for s in scores:
            out[f"{s}__{m}"] = sub.get_column(s).to_arrow().cast(pa.float64())
    return out


class UFRatingStats(Stage):
    """Add ``<score>__<model>`` mean columns for the card (no row is removed)."""

    def __init__(self, *, models: Sequence[str], scores: Sequence[str] = DEFAULT_SCORES) -> None:
        models, scores = [str(m) for m in models or []], [str(s) for s in scores or []]
        if not models or not scores:
            raise ConfigError("uf_rating_stats needs the pool's model labels (models: [...]) and score columns")
        self.labels, self.scores = models, scores
        self.requires = {"completions": COMPLETIONS, **{s: pa.list_(pa.float64()) for s in scores}}
        self.adds = {f"{s}__{m}": pa.float64() for s in scores for m in models}
        self.params = {"models": models, "scores": scores}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        if table.num_rows:
            for name, col in per_model_means(table, self.scores, self.labels).items():
                table = set_column(table, name, col)
        else:
            for name, typ in self.adds.items():
                table = set_column(table, name, pa.array([], typ))
        return table, empty_rejected(table)
