"""Embedding near-duplicate removal with Magpie's rule (``exp/gen_dis.py``).

Magpie (Xu et al. 2024, section 1.8 of methods.md) embeds instructions with
all-mpnet-base-v2, calls two rows near-duplicates when their squared L2 distance (unit
vectors) is below **0.05** (cosine > 0.975), and keeps a row iff it has no near-duplicate
before it; the default threshold here follows the embedder
(:func:`filters.embeddings.duplicate_threshold`: MiniLM's own calibrated figure for the
default model, Magpie's 0.05 for mpnet). A removed row
points at its earliest near-duplicate (``min_similar_uuid``). This stage applies that rule
directly, with an exact faiss range search instead of Magpie's ``k = 500`` cap, so a row
with more than 500 near-copies is still judged against all of them.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.embeddings import (
    DEFAULT_MODEL,
    duplicate_threshold,
    neighbor_ids,
    neighbors_within,
    table_embeddings,
)
from pipelines.errors import ConfigError
from pipelines.stage import Stage, split_by_reason

__all__ = ["EmbeddingDedup", "earliest_duplicate", "radius_for"]

def radius_for(threshold: float, metric: str) -> float:
    """Squared-L2 radius for a threshold: itself for ``"l2"``; for ``"cosine"`` (a similarity
    above which rows are duplicates) ``2 - 2 * threshold``, valid for unit vectors.

    Examples
    --------
    >>> radius_for(0.05, "l2"), radius_for(0.975, "cosine")
    (0.05, 0.05)
    """
    if metric == "l2":
        return float(threshold)
    if metric == "cosine":
        return round(2.0 - 2.0 * float(threshold), 12)
    msg = f"metric must be 'l2' or 'cosine', got {metric!r}"
    raise ConfigError(msg)


def earliest_duplicate(emb: np.ndarray, radius: float, *, chunk_size: int = 1024) -> np.ndarray:
    """For each row, the lowest index of another row within ``radius`` (squared L2), or -1.

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.array([[0.0], [3.0], [0.1], [3.1], [9.0]], np.float32)
    >>> earliest_duplicate(emb, 0.05).tolist()
    [2, 3, 0, 1, -1]
    """
    n = emb.shape[0]
    out = np.full(n, -1, np.int64)
    for start, lims, _d, idx in neighbors_within(emb, radius, chunk_size=chunk_size):
        counts = np.diff(lims)
        rows = start + np.repeat(np.arange(len(counts)), counts)
        other = idx != rows
        if not other.any():
            continue
        best = np.full(len(counts), n, np.int64)
        np.minimum.at(best, rows[other] - start, idx[other])
        found = best < n
        out[start:start + len(counts)][found] = best[found]
    return out


class EmbeddingDedup(Stage):
    """Drop rows whose embedding has an earlier near-duplicate (Magpie's dedup rule).

    Parameters
    ----------
    column
        Text column(s) to embed (default ``"instruction"``; a list is joined with blank lines).
    model
        Embedding model, ``"default"`` = all-MiniLM-L6-v2 (Magpie used all-mpnet-base-v2).
    threshold
        With ``metric="l2"``: squared L2 distance below which rows are duplicates. With
        ``metric="cosine"``: cosine similarity above which they are. Default: the figure
        for ``model`` from :func:`filters.embeddings.duplicate_threshold` (MiniLM:
        :data:`~filters.embeddings.MINILM_THRESHOLD`; mpnet: Magpie's 0.05, cosine 0.975).
        The card lists the value used and the embedder it was set for (``threshold_for``).
    embedding_column
        Use this ``list<float32>`` column when present instead of embedding the text.

    Columns: requires ``id`` and the text column(s); adds none.
    Rejection reasons: ``duplicate_of:<id>``, the id of the row's earliest near-duplicate.
    That row may itself have been removed (chains a~b~c drop b and c), exactly as Magpie's
    ``min_similar_uuid`` filter does.
    """

    is_global = True
    version = "1"

    def __init__(
        self,
        *,
        column: str | Sequence[str] = "instruction",
        model: str = DEFAULT_MODEL,
        threshold: float | None = None,
        metric: str = "l2",
        embedding_column: str | None = "embedding",
        batch_size: int = 64,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        threshold_for = "given"
        if threshold is None:
            d2, threshold_for = duplicate_threshold(model)
            threshold = d2 if metric == "l2" else 1.0 - d2 / 2.0
        radius = radius_for(threshold, metric)
        if not 0.0 < radius <= 4.0:
            msg = f"embedding_dedup: threshold {threshold} ({metric}) gives squared-L2 radius {radius}; expected (0, 4]"
            raise ConfigError(msg)
        self.columns = [column] if isinstance(column, str) else list(column)
        self.radius = radius
        self.params = {"column": column, "model": model, "threshold": float(threshold), "threshold_for": threshold_for, "metric": metric,
                           "embedding_column": embedding_column, "batch_size": int(batch_size)}
        self.requires = {"id": pa.string(), **{c: None for c in self.columns}}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        p = self.params
        emb = table_embeddings(table, self.columns, p["model"], embedding_column=p["embedding_column"], batch_size=p["batch_size"])
        first = earliest_duplicate(emb, self.radius)
        # Magpie keeps a row iff its duplicate set's lowest index is its own.
        is_dup = (first >= 0) & (first < np.arange(len(first)))
        target = pc.fill_null(neighbor_ids(table, np.where(is_dup, first, -1)), "")
        reasons = pc.if_else(pa.array(is_dup), pc.binary_join_element_wise("duplicate_of:", target, ""), pa.nulls(len(first), pa.string()))
        return split_by_reason(table, reasons)
