"""Keep, drop or rename columns (for the shape a trainer expects)."""
from __future__ import annotations

from typing import Mapping, Sequence

import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.stage import Stage, empty_rejected


class SelectColumns(Stage):
    """``keep`` (list, order kept; ``id`` always stays), ``drop`` (list), ``rename`` (old: new)."""

    def __init__(self, *, keep: Sequence[str] | None = None, drop: Sequence[str] | None = None, rename: Mapping[str, str] | None = None) -> None:
        if keep and drop:
            raise ConfigError("give keep or drop, not both")
        if not (keep or drop or rename):
            raise ConfigError("give keep, drop or rename")
        self.keep = list(keep) if keep else None
        self.drop = list(drop) if drop else []
        self.rename = dict(rename or {})
        if "id" in self.drop or "id" in self.rename:
            raise ConfigError("the 'id' column cannot be dropped or renamed (resume and dedup rely on it)")
        self.params = {"keep": self.keep, "drop": self.drop, "rename": self.rename}
        self.requires = {c: None for c in (self.keep or []) + self.drop + list(self.rename)}

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return self._apply(pa.Table.from_batches([], schema)).schema

    def _apply(self, table: pa.Table) -> pa.Table:
        if self.keep is not None:
            table = table.select(["id"] + [c for c in self.keep if c != "id"])
        if self.drop:
            table = table.drop_columns(self.drop)
        if self.rename:
            table = table.rename_columns([self.rename.get(c, c) for c in table.column_names])
        return table

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        return self._apply(table), empty_rejected(table)
