"""Cheap text heuristics: empty and length filters, and length columns (Magpie's
``instruction_length``/``response_length`` are character counts)."""
from __future__ import annotations

from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import ConfigError
from pipelines.stage import Filter, Stage, set_column


def _columns(column: str | Sequence[str]) -> list[str]:
    cols = [column] if isinstance(column, str) else list(column)
    if not cols or not all(isinstance(c, str) and c for c in cols):
        raise ConfigError(f"column must be a column name or a list of names, got {column!r}")
    return cols


class EmptyFilter(Filter):
    """Reject rows whose text column is null or only whitespace.

    Reasons: ``empty:<column>``.
    """

    def __init__(self, *, column: str | Sequence[str] = "instruction") -> None:
        self.columns = _columns(column)
        self.params = {"column": column}
        self.requires = {c: pa.string() for c in self.columns}

    def reasons(self, table: pa.Table) -> pa.Array:
        reasons = pa.nulls(table.num_rows, pa.string())
        for col in reversed(self.columns):
            arr = table.column(col)
            empty = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0), True)
            reasons = pc.if_else(empty, pa.scalar(f"empty:{col}"), reasons)
        return reasons


class LengthFilter(Filter):
    """Reject rows whose text is shorter than ``min_chars`` / longer than ``max_chars``
    (or in words with ``unit: words``). Reasons: ``too_short:<column>``, ``too_long:<column>``."""

    def __init__(self, *, column: str | Sequence[str] = "instruction", min_chars: int | None = None, max_chars: int | None = None, unit: str = "chars") -> None:
        self.columns = _columns(column)
        if unit not in ("chars", "words"):
            raise ConfigError(f"unit must be 'chars' or 'words', got {unit!r}")
        if min_chars is None and max_chars is None:
            raise ConfigError("give min_chars and/or max_chars")
        if min_chars is not None and max_chars is not None and min_chars > max_chars:
            raise ConfigError(f"min_chars ({min_chars}) > max_chars ({max_chars})")
        self.min, self.max, self.unit = min_chars, max_chars, unit
        self.params = {"column": column, "min_chars": min_chars, "max_chars": max_chars, "unit": unit}
        self.requires = {c: pa.string() for c in self.columns}

    def reasons(self, table: pa.Table) -> pa.Array:
        reasons = pa.nulls(table.num_rows, pa.string())
        for col in reversed(self.columns):
            n = text_length(table.column(col), self.unit)
            if self.max is not None:
                reasons = pc.if_else(pc.fill_null(pc.greater(n, self.max), False), pa.scalar(f"too_long:{col}"), reasons)
            if self.min is not None:
                reasons = pc.if_else(pc.fill_null(pc.less(n, self.min), True), pa.scalar(f"too_short:{col}"), reasons)
        return reasons


def text_length(arr: pa.ChunkedArray | pa.Array, unit: str = "chars") -> pa.Array:
    if unit == "chars":
        return pc.utf8_length(arr)
    return pc.list_value_length(pc.utf8_split_whitespace(pc.utf8_trim_whitespace(arr)))


class TextLengths(Stage):
    """Add ``<column>_length`` (characters) for each text column; rejects nothing."""

    def __init__(self, *, columns: Sequence[str] = ("instruction", "response")) -> None:
        self.columns = _columns(list(columns))
        self.params = {"columns": list(columns)}
        self.requires = {c: pa.string() for c in self.columns}
        self.adds = {f"{c}_length": pa.int64() for c in self.columns}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        from pipelines.stage import empty_rejected

        for c in self.columns:
            table = set_column(table, f"{c}_length", pc.fill_null(pc.utf8_length(table.column(c)), 0).cast(pa.int64()))
        return table, empty_rejected(table)
