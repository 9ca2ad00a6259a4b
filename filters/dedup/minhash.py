"""MinHash-LSH near-duplicate removal (datatrove / Magpie style): the stage.

The maths is pure functions in two modules: :mod:`filters.dedup.signatures` (shingles ->
uint32 MinHash signatures) and :mod:`filters.dedup.lsh` (LSH bands -> verified candidate
pairs -> connected components -> one keeper per component). :class:`MinHashDedup` only
wires them to columns.

Defaults. datatrove (``MinhashConfig``) uses 5-gram word shingles, 14 bands x 8 rows = 112
permutations (threshold ~ (1/14)^(1/8) = 0.72) for web documents. Instructions are short
(Alpaca: ~10 words), where one edited word changes most 5-grams, so the default here is word
3-grams; 112 permutations and a Jaccard threshold of 0.7. Since candidates are verified,
bands x rows favour recall (:func:`~filters.dedup.lsh.optimal_bands`): 22 x 5 catches 98% of
pairs at J = 0.7.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.dedup.lsh import cluster_keepers, duplicate_clusters, optimal_bands
from filters.dedup.signatures import minhash_signatures, shingle_hashes
from filters.embeddings import column_text
from pipelines.errors import ConfigError, SchemaError
from pipelines.stage import Stage, split_by_reason

__all__ = ["MinHashDedup"]


class MinHashDedup(Stage):
    """Remove near-duplicate rows by MinHash-LSH; keep one row per duplicate cluster.

    Parameters
    ----------
    column
        Text column, or a list of columns joined with a blank line (default
        ``"instruction"``; message-list columns contribute their contents).
    shingle, ngram
        ``"word"`` (default) or ``"char"`` n-grams, ``ngram`` tokens each (default 3).
    num_perm
        Permutations per signature (default 112, datatrove's 14 x 8).
    threshold
        Estimated Jaccard similarity at or above which two rows are duplicates (0.7).
    bands, rows
        LSH layout; both or neither (``bands * rows <= num_perm``). Neither: derived from
        ``threshold`` by :func:`optimal_bands`.
    keep
        ``"first"`` keeps the earliest row of a cluster; a column name keeps the row with the
        highest value there (nulls lowest, ties to the earliest).
    seed
        Seeds the permutations.

    Columns: requires ``id`` (string) and the text column(s); adds none.
    Rejection reasons: ``duplicate_of:<id>``, the id of the row kept for the cluster.
    Clusters are connected components, so a chain a~b~c is one cluster even when a and c
    are less similar than ``threshold`` (as in datatrove).
    """

    is_global = True
    version = "1"

    def __init__(
        self,
        *,
        column: str | Sequence[str] = "instruction",
        shingle: str = "word",
        ngram: int = 3,
        num_perm: int = 112,
        threshold: float = 0.7,
        bands: int | None = None,
        rows: int | None = None,
        keep: str = "first",
        seed: int = 1,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        if shingle not in ("word", "char"):
            msg = f"minhash_dedup: shingle must be 'word' or 'char', got {shingle!r}"
            raise ConfigError(msg)
        if int(ngram) < 1 or int(num_perm) < 1:
            msg = f"minhash_dedup: ngram and num_perm must be >= 1, got ngram={ngram}, num_perm={num_perm}"
            raise ConfigError(msg)
        if not 0.0 < float(threshold) <= 1.0:
            msg = f"minhash_dedup: threshold is a Jaccard similarity in (0, 1], got {threshold}"
            raise ConfigError(msg)
        if (bands is None) != (rows is None):
            msg = "minhash_dedup: give both bands and rows, or neither (derived from threshold)"
            raise ConfigError(msg)
        if bands is None:
            bands, rows = optimal_bands(float(threshold), int(num_perm))
        if int(bands) < 1 or int(rows) < 1 or int(bands) * int(rows) > int(num_perm):
            msg = f"minhash_dedup: bands x rows = {bands} x {rows} must be >= 1 and fit in num_perm={num_perm}"
            raise ConfigError(msg)
        columns = [column] if isinstance(column, str) else list(column)
        if not columns:
            msg = "minhash_dedup: column must name at least one column"
            raise ConfigError(msg)
        self.columns = columns
        self.params = {"column": column, "shingle": shingle, "ngram": int(ngram), "num_perm": int(num_perm), "threshold": float(threshold),
                           "bands": int(bands), "rows": int(rows), "keep": keep, "seed": int(seed)}
        self.requires = {"id": pa.string(), **{c: None for c in columns}}
        if keep != "first":
            self.requires[keep] = None

    def signatures(self, table: pa.Table, *, chunk_rows: int = 16384) -> np.ndarray:
        """Signatures of ``table``'s rows, computed ``chunk_rows`` at a time."""
        p = self.params
        parts = []
        for start in range(0, table.num_rows, chunk_rows):
            texts = column_text(table.slice(start, chunk_rows), self.columns)
            h, off = shingle_hashes(texts, shingle=p["shingle"], ngram=p["ngram"])
            parts.append(minhash_signatures(h, off, num_perm=p["num_perm"], seed=p["seed"]))
        return np.concatenate(parts) if parts else np.zeros((0, p["num_perm"]), np.uint32)

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        p = self.params
        labels = duplicate_clusters(self.signatures(table), bands=p["bands"], rows=p["rows"], threshold=p["threshold"])
        scores = None
        if p["keep"] != "first":
            col = table.column(p["keep"])
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
                msg = f"keep column '{p['keep']}' has type {col.type}; expected a number (or keep='first')"
                raise SchemaError(msg, stage="minhash_dedup", column=p["keep"])
            scores = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        keeper = cluster_keepers(labels, scores)
        return split_by_reason(table, _duplicate_reasons(table.column("id"), keeper))


def _duplicate_reasons(ids: pa.ChunkedArray | pa.Array, keeper: np.ndarray) -> pa.Array:
    """``duplicate_of:<id of keeper>`` for rows that are not their own keeper, else null."""
    ids = pc.cast(ids, pa.string())  # large_string ids too
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    target = pc.fill_null(pc.take(ids, pa.array(keeper)), "")
    reason = pc.binary_join_element_wise("duplicate_of:", target, "")
    is_dup = pa.array(keeper != np.arange(len(keeper)))
    return pc.if_else(is_dup, reason, pa.nulls(len(keeper), pa.string()))
