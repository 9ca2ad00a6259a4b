"""Near-duplicates of a refresh's new rows against every earlier release.

Each version keeps the MinHash signature of every row it released
(``state/release.parquet``), so a refresh compares tonight's rows with all earlier
releases without reading or re-hashing their text. The maths is
:mod:`filters.dedup.signatures` (shingles, signatures) and :mod:`filters.dedup.lsh` (band
keys, the recall-first band layout), the same as the ``minhash_dedup`` stage, so "duplicate"
means the same thing inside a run and across releases. ``pipelines`` is the frame that
``filters`` builds on, so those modules are imported inside the functions that use them,
only when a refresh runs (the one place the frame calls into ``filters``).

Defaults are ``minhash_dedup``'s: word 3-grams, 112 permutations, Jaccard >= 0.7 (22 x 5
bands catch 98% of pairs at J = 0.7; candidates are verified on the signatures).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.errors import ConfigError

__all__ = ["DEFAULTS", "TEXT_COLUMNS", "release_matches", "row_signatures", "text_column"]

DEFAULTS = {"shingle": "word", "ngram": 3, "num_perm": 112, "seed": 1, "threshold": 0.7}
# what a row is "about": TRL's prompt for pairs, the instruction for SFT rows
TEXT_COLUMNS = ("prompt", "instruction", "messages", "text")
# old rows sharing a band bucket checked per new row and band (as minhash_dedup's window)
WINDOW = 64


def text_column(table: pa.Table, column: str | None) -> str:
    """The column whose text is compared: ``column`` if given, else the first of
    :data:`TEXT_COLUMNS` the table has."""
    if column:
        if column not in table.column_names:
            msg = f"--dedup-column '{column}' is not a column of the recipe's output (has: {', '.join(table.column_names)})"
            raise ConfigError(msg)
        return column
    for c in TEXT_COLUMNS:
        if c in table.column_names:
            return c
    msg = f"no text column to compare across releases (looked for {', '.join(TEXT_COLUMNS)}; the output has {', '.join(table.column_names)})"
    raise ConfigError(msg, hint="name one with --dedup-column COLUMN")


def row_signatures(table: pa.Table, column: str, params: dict[str, Any]) -> np.ndarray:
    """``(rows, num_perm)`` uint32 MinHash signatures of ``table[column]``'s text."""
    from filters.dedup.signatures import minhash_signatures, shingle_hashes
    from filters.embeddings import column_text

    if table.num_rows == 0:
        return np.zeros((0, int(params["num_perm"])), np.uint32)
    h, off = shingle_hashes(column_text(table, [column]), shingle=params["shingle"], ngram=int(params["ngram"]))
    return minhash_signatures(h, off, num_perm=int(params["num_perm"]), seed=int(params["seed"]))


def release_matches(old: np.ndarray, new: np.ndarray, *, threshold: float, window: int = WINDOW) -> np.ndarray:
    """For each new row, the index of an earlier-release row whose estimated Jaccard
    similarity (share of equal signature entries) is ``>= threshold``, else -1.

    Candidates come from LSH band buckets (:func:`filters.dedup.lsh.band_keys`, bands from
    :func:`~filters.dedup.lsh.optimal_bands`): per band the old keys are sorted once and each
    new row looks its bucket up by binary search, so the cost is ``O((old + new) log old)``
    per band, never old x new. New rows are not compared with each other here (the recipe's
    own dedup stages do that).

    Examples
    --------
    >>> from filters.dedup.signatures import minhash_signatures, shingle_hashes
    >>> sig = lambda texts: minhash_signatures(*shingle_hashes(texts))
    >>> old = sig(["write a poem about the sea and the sky", "list three fruits"])
    >>> new = sig(["Write a poem about the sea and the sky!", "name a colour"])
    >>> release_matches(old, new, threshold=0.7).tolist()
    [0, -1]
    """
    from filters.dedup.lsh import band_keys, optimal_bands

    match = np.full(len(new), -1, np.int64)
    if len(old) == 0 or len(new) == 0:
        return match
    bands, rows = optimal_bands(float(threshold), old.shape[1])
    k_old, k_new = band_keys(old, bands, rows), band_keys(new, bands, rows)
    for band in range(bands):
        order = np.argsort(k_old[:, band], kind="stable")
        keys = k_old[order, band]
        lo = np.searchsorted(keys, k_new[:, band], side="left")
        hi = np.searchsorted(keys, k_new[:, band], side="right")
        todo = (hi > lo) & (match < 0)
        for d in range(window):
            m = todo & (lo + d < hi)
            if not m.any():
                break
            i_new = np.nonzero(m)[0]
            i_old = order[lo[m] + d]
            ok = (old[i_old] == new[i_new]).mean(axis=1) >= threshold
            match[i_new[ok]] = i_old[ok]
            todo[i_new[ok]] = False
        if (match >= 0).all():
            break
    return match
