"""Embed rows once, per shard, into an ``embedding`` column that later stages reuse.

``embedding_dedup``, ``knn_diversity``, ``deita_select`` and ``isa_select`` are global stages:
each would embed the whole corpus again, and a resumed run would re-embed it. Placed before
them, this stage embeds every shard as it streams (in CPU workers, beside generation), and
the shard is checkpointed like any other, so a run embeds each row once and a resume embeds
nothing it already did. The global stages read the column (:func:`filters.embeddings.
table_embeddings`). Drop the column at the end of a recipe (``select_columns``) when the
dataset should not carry it.

Input: ``columns`` (text, joined with a blank line). Output: ``embedding`` (list<float32>,
unit length). Rejected: none.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from filters.embeddings import DEFAULT_MODEL, column_text, embed, embedding_array
from pipelines.errors import ConfigError
from pipelines.stage import Stage, empty_rejected, set_column


class Embed(Stage):
    """Add unit-length sentence embeddings of ``columns`` as ``embedding``."""

    adds = {"embedding": pa.list_(pa.float32())}

    def __init__(self, *, column: str | Sequence[str] = "instruction", model: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        super().__init__()
        cols = [column] if isinstance(column, str) else list(column)
        if not cols or not all(isinstance(c, str) and c for c in cols):
            msg = f"column must be a column name or a list of them, got {column!r}"
            raise ConfigError(msg)
        self.columns, self.model, self.batch_size = cols, model, int(batch_size)
        self.requires = {c: None for c in cols}
        self.params = {"column": cols, "model": model, "batch_size": self.batch_size}

    def load(self) -> None:
        from filters.embeddings import load_embedder

        load_embedder(self.model)

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        emb = embed(column_text(table, self.columns), model=self.model, batch_size=self.batch_size)
        return set_column(table, "embedding", embedding_array(emb), pa.list_(pa.float32())), empty_rejected(table)

    def models(self) -> dict[str, Any]:
        return {"embedder": str(self.model)}
