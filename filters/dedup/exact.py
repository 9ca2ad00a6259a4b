"""Exact-duplicate removal: the first occurrence of each (normalized) text is kept."""
from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.stage import Stage, split_by_reason


class ExactDedup(Stage):
    """Global stage: reject later copies of the same text with ``duplicate_of:<id>``.

    ``normalize`` lower-cases and collapses whitespace first (so "Hi  there" == "hi there").
    A list or struct column (``messages``) is compared by its JSON text, so two
    conversations are duplicates when every turn's role and content match.
    """

    is_global = True

    def __init__(self, *, column: str | Sequence[str] = "instruction", normalize: bool = True) -> None:
        self.columns = [column] if isinstance(column, str) else list(column)
        if not self.columns:
            raise ConfigError("column must name at least one column")
        self.normalize = normalize
        self.params = {"column": column, "normalize": normalize}
        self.requires = {"id": pa.string(), **{c: None for c in self.columns}}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        df = pl.from_arrow(table.select(["id", *self.columns]))
        assert isinstance(df, pl.DataFrame)
        keys = []
        for c in self.columns:
            # a messages list cannot be cast to text: compare its JSON encoding instead
            e = pl.struct(pl.col(c)).struct.json_encode() if df.schema[c].is_nested() else pl.col(c).cast(pl.Utf8)
            if self.normalize:
                e = e.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()
            keys.append(e.alias(f"__k{len(keys)}"))
        df = df.with_row_index("__pos").with_columns(keys)
        kcols = [f"__k{i}" for i in range(len(keys))]
        first = df.group_by(kcols, maintain_order=True).agg(pl.col("id").first().alias("__first"), pl.col("__pos").first().alias("__firstpos"))
        df = df.join(first, on=kcols, how="left", nulls_equal=True).sort("__pos")
        reasons = df.select(pl.when(pl.col("__pos") != pl.col("__firstpos")).then(pl.lit("duplicate_of:") + pl.col("__first")).otherwise(None)).to_series()
        return split_by_reason(table, reasons.to_arrow().cast(pa.string()))
