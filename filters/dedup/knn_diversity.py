"""Magpie's repetition / diversity tags (``exp/gen_dis.py``, methods.md section 1.8).

Magpie embeds every instruction, searches its ``k = 500`` nearest neighbours in an exact
faiss L2 index (HF ``datasets.add_faiss_index`` defaults; faiss returns *squared* L2) and
publishes, per row:

* ``min_neighbor_distance``: squared L2 to the nearest other row (unit vectors, so
  ``2 - 2 cos``);
* ``repeat_count``: neighbours closer than **0.05** (cos > 0.975 with all-mpnet-base-v2),
  self excluded; the default threshold here follows the embedder
  (:func:`filters.embeddings.duplicate_threshold`);
* ``min_similar_uuid``: id of the lowest-index member of that duplicate set, self included
  (its own id when it is the first), null when it has no duplicate.

Magpie's later dedup keeps a row iff ``min_similar_uuid`` is null or its own id; that is
:class:`filters.dedup.embedding.EmbeddingDedup`. This stage only tags and keeps every row.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from filters.embeddings import (
    DEFAULT_MODEL,
    build_index,
    duplicate_threshold,
    embedding_array,
    neighbor_ids,
    table_embeddings,
)
from pipelines.errors import ConfigError
from pipelines.stage import Stage, empty_rejected, set_column

__all__ = ["KnnDiversity", "neighbor_stats"]

MAGPIE_K = 500


def neighbor_stats(rows: np.ndarray, dists: np.ndarray, inds: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magpie's three tags from kNN results of the query ``rows``.

    Parameters
    ----------
    rows
        ``(m,)`` index of each query row in the database.
    dists, inds
        ``(m, k)`` squared L2 distances and neighbour indices (``-1`` = none), as from
        :func:`filters.embeddings.knn`; a row's own index is skipped wherever it appears.
    threshold
        Squared-L2 distance below which a neighbour is a duplicate.

    Returns
    -------
    (min_distance, repeat_count, min_similar)
        float64 nearest non-self distance (NaN when there is none), int64 number of
        non-self neighbours below ``threshold``, int64 lowest index of the duplicate set
        including the row itself (-1 when ``repeat_count`` is 0).

    Examples
    --------
    >>> import numpy as np
    >>> d = np.array([[0.0, 0.01, 0.02], [0.0, 0.01, 0.5]], np.float32)
    >>> i = np.array([[5, 2, 7], [2, 5, 9]])
    >>> md, rc, ms = neighbor_stats(np.array([5, 2]), d, i, 0.05)
    >>> md.round(3).tolist(), rc.tolist(), ms.tolist()
    ([0.01, 0.01], [2, 1], [2, 2])
    """
    other = (inds >= 0) & (inds != rows[:, None])
    d = np.where(other, np.maximum(dists.astype(np.float64), 0.0), np.inf)
    min_distance = d.min(axis=1) if d.shape[1] else np.full(len(rows), np.inf)
    min_distance[np.isinf(min_distance)] = np.nan
    dup = d < threshold
    repeat_count = dup.sum(axis=1).astype(np.int64)
    big = np.iinfo(np.int64).max
    lowest = np.where(dup, inds, big).min(axis=1) if d.shape[1] else np.full(len(rows), big)
    min_similar = np.where(repeat_count > 0, np.minimum(lowest, rows), -1)
    return min_distance, repeat_count, min_similar


class KnnDiversity(Stage):
    """Tag rows with Magpie's ``min_neighbor_distance``, ``repeat_count``, ``min_similar_uuid``.

    Parameters
    ----------
    column
        Text column(s) to embed (default ``"instruction"``).
    model
        Embedding model, ``"default"`` = all-MiniLM-L6-v2 (Magpie: all-mpnet-base-v2).
    k
        Non-self neighbours examined per row (Magpie: 500 results including self), capped
        at ``N - 1``; ``repeat_count`` cannot exceed it.
    threshold
        Squared L2 below which a neighbour counts as a repeat. Default: the figure for
        ``model`` from :func:`filters.embeddings.duplicate_threshold` (MiniLM:
        :data:`~filters.embeddings.MINILM_THRESHOLD`; mpnet: Magpie's 0.05); the card lists
        the value used and the embedder it was set for (``threshold_for``).
    index
        ``"flat"`` (exact, Magpie's), ``"ivf"`` or ``"hnsw"`` (approximate, for millions).
    output_embedding
        Also add the ``embedding`` column (``list<float32>``) for later stages.
    embedding_column
        Use this column when present instead of embedding the text.

    Columns: requires ``id`` and the text column(s); adds ``min_neighbor_distance``
    (float64, null for a single row), ``repeat_count`` (int64), ``min_similar_uuid``
    (string, null without duplicates) and optionally ``embedding``.
    Rejection reasons: none (every row is kept).
    """

    is_global = True
    version = "1"

    def __init__(
        self,
        *,
        column: str | Sequence[str] = "instruction",
        model: str = DEFAULT_MODEL,
        k: int = MAGPIE_K,
        threshold: float | None = None,
        index: str = "flat",
        output_embedding: bool = False,
        embedding_column: str | None = "embedding",
        batch_size: int = 64,
        chunk_size: int = 4096,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        if int(k) < 1:
            msg = f"knn_diversity: k must be >= 1, got {k}"
            raise ConfigError(msg)
        threshold_for = "given"
        if threshold is None:
            threshold, threshold_for = duplicate_threshold(model)
        if not 0.0 < float(threshold) <= 4.0:
            msg = f"knn_diversity: threshold is a squared L2 distance in (0, 4], got {threshold}"
            raise ConfigError(msg)
        if index not in ("flat", "ivf", "hnsw"):
            msg = f"knn_diversity: index must be 'flat', 'ivf' or 'hnsw', got {index!r}"
            raise ConfigError(msg)
        self.columns = [column] if isinstance(column, str) else list(column)
        self.params = {"column": column, "model": model, "k": int(k), "threshold": float(threshold), "threshold_for": threshold_for, "index": index,
                           "output_embedding": bool(output_embedding), "embedding_column": embedding_column,
                           "batch_size": int(batch_size), "chunk_size": int(chunk_size)}
        self.requires = {"id": pa.string(), **{c: None for c in self.columns}}
        self.adds = {"min_neighbor_distance": pa.float64(), "repeat_count": pa.int64(), "min_similar_uuid": pa.string()}
        if output_embedding:
            self.adds["embedding"] = pa.list_(pa.float32())

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        p = self.params
        emb = table_embeddings(table, self.columns, p["model"], embedding_column=p["embedding_column"], batch_size=p["batch_size"])
        n = emb.shape[0]
        k = min(p["k"], n - 1) + 1 if n else 0  # + 1: the row itself comes back too
        min_d = np.full(n, np.nan)
        repeat = np.zeros(n, np.int64)
        similar = np.full(n, -1, np.int64)
        if k > 1:
            idx = build_index(emb, p["index"], ef_search=max(128, k))
            for start in range(0, n, p["chunk_size"]):
                q = emb[start:start + p["chunk_size"]]
                d, i = idx.search(q, k)  # one chunk of (chunk, k) results at a time
                rows = np.arange(start, start + len(q))
                sl = slice(start, start + len(q))
                min_d[sl], repeat[sl], similar[sl] = neighbor_stats(rows, d, i, p["threshold"])
        out = set_column(table, "min_neighbor_distance", pa.array(min_d, pa.float64(), from_pandas=True))
        out = set_column(out, "repeat_count", pa.array(repeat, pa.int64()))
        out = set_column(out, "min_similar_uuid", neighbor_ids(table, similar), pa.string())
        if p["output_embedding"]:
            out = set_column(out, "embedding", embedding_array(emb))
        return out, empty_rejected(out)
