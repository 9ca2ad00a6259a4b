"""Stages that misbehave on purpose, to test how the executor reports them."""
from __future__ import annotations

import pyarrow as pa

from pipelines.stage import Stage, empty_rejected


class Boom(Stage):
    """Raises a bug-like error on the batch holding ``trigger``."""

    requires = {"instruction": pa.string()}

    def __init__(self, *, trigger: str = "boom") -> None:
        self.trigger = trigger
        self.params = {"trigger": trigger}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        if self.trigger in table.column("instruction").to_pylist():
            raise ZeroDivisionError("division by zero in a stage")
        return table, empty_rejected(table)


class LosesRows(Stage):
    """Drops a row without rejecting it: the executor must refuse."""

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        return table.slice(1), empty_rejected(table)
