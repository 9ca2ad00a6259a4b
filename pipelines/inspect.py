"""Notebook- and terminal-friendly views of a dataset or a run.

>>> from pipelines.inspect import load, rejected      # doctest: +SKIP
>>> df = load("out/magpie-sft")                       # polars DataFrame
>>> rejected("out/magpie-sft").group_by("reject_reason").len()
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.output import bar, distributions, read_dataset


def load(path: str | Path) -> Any:
    """The dataset as a polars DataFrame (zero-copy from Arrow)."""
    import polars as pl

    return pl.from_arrow(read_dataset(path))


def rejected(out_dir: str | Path) -> Any:
    """All rejected rows of a run's output folder, with a ``reject_stage`` column."""
    import polars as pl

    frames = []
    for f in sorted((Path(out_dir) / "rejected").glob("*.parquet")):
        df = pl.read_parquet(f)
        frames.append(df.with_columns(pl.lit(f.stem.split("-", 1)[-1]).alias("reject_stage")))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def summarize(path: str | Path, *, n_rows: int = 3) -> str:
    table = read_dataset(path)
    lines = [f"{path}: {table.num_rows} rows, {table.num_columns} columns", "", "columns:"]
    width = max((len(n) for n in table.column_names), default=0)
    for f in table.schema:
        nulls = table.column(f.name).null_count
        lines.append(f"  {f.name:<{width}}  {str(f.type):<40} nulls {nulls}")
    d = distributions(table)
    for col, counts in d["categorical"].items():
        lines += ["", f"{col}:"]
        for v, n in list(counts.items())[:15]:
            lines.append(f"  {str(v)[:30]:<30} {n:>7}  {bar(n, table.num_rows, 40)}")
    for col, s in d["numeric"].items():
        lines.append(f"\n{col}: mean {s['mean']}  min {s['min']}  median {s['median']}  max {s['max']}")
    if n_rows and table.num_rows:
        lines += ["", "examples:"]
        for row in table.slice(0, n_rows).to_pylist():
            short = {k: (v[:100] + "..." if isinstance(v, str) and len(v) > 100 else v) for k, v in row.items() if k != "embedding"}
            lines.append(f"  {short}")
    return "\n".join(lines)
