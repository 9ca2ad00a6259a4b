"""MinHash-LSH near-duplicate removal (datatrove / Magpie style), vectorized with numpy.

The pipeline, each step a pure function below:

1. :func:`shingle_hashes`: lowercase, split into words (runs of ``\\w``) or characters
   without punctuation (polars), hash each *distinct* token once (blake2b: stable across
   processes and library versions), combine token hashes into n-gram hashes with numpy.
2. :func:`minhash_signatures`: ``h_p(x) = ((a_p x + b_p) mod 2^64) >> 32`` for all
   permutations at once as one ``(shingles, num_perm)`` matrix per chunk, then a segmented
   minimum per document (``np.minimum.reduceat``). Only the ``(n, num_perm)`` uint32
   signatures are kept, so memory grows with signatures, not text.
3. :func:`band_keys` / :func:`candidate_pairs`: LSH with ``bands x rows``; rows sharing a
   band key are candidates.
4. :func:`duplicate_clusters`: candidates are verified by the estimated Jaccard (share of
   equal signature entries) ``>= threshold`` and merged into connected components
   (union-find, as datatrove's ``MinhashDedupCluster``).
5. :func:`cluster_keepers`: one member per component is kept: the first row, or the row
   with the best score.

Defaults. datatrove (``MinhashConfig``) uses 5-gram word shingles, 14 bands x 8 rows = 112
permutations (threshold ~ (1/14)^(1/8) = 0.72) for web documents. Instructions are short
(Alpaca: ~10 words), where one edited word changes most 5-grams, so the default here is word
3-grams; 112 permutations and a Jaccard threshold of 0.7. Since candidates are verified,
bands x rows favour recall (:func:`optimal_bands`): 22 x 5 catches 98% of pairs at J = 0.7.

Why numpy and not rensa: for 400k shingles x 112 permutations, rensa's
``RMinHash.digest_matrix_from_flat_token_hashes`` (fed the same token hashes) takes 0.04 s
but getting its matrix into numpy (``to_rows``, Python lists) takes 0.43 s; the in-place
numpy chunks below take 0.16 s in all. ``bench/curation.py`` compares the whole stage with
datasketch's ``MinHash.bulk`` + ``MinHashLSH`` on the same parameters (see its notes).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.embeddings import column_text
from pipelines.errors import ConfigError, SchemaError
from pipelines.stage import Stage, split_by_reason

__all__ = [
    "MinHashDedup",
    "band_keys",
    "candidate_pairs",
    "cluster_keepers",
    "duplicate_clusters",
    "estimated_jaccard",
    "minhash_signatures",
    "optimal_bands",
    "shingle_hashes",
]

_FNV = np.uint64(0x100000001B3)
_EMPTY_SEED = np.uint64(0xCBF29CE484222325)
_WINDOW = 64  # bucket neighbours paired per row: all pairs for buckets of <= 65 rows


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the output (uint64, wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _tokens(texts: Sequence[str], shingle: str):
    import polars as pl

    s = pl.Series("t", list(texts), dtype=pl.String).fill_null("").str.to_lowercase()
    if shingle == "word":
        toks = s.str.extract_all(r"\w+")
    else:
        toks = s.str.replace_all(r"[^\w\s]", " ").str.replace_all(r"\s+", " ").str.strip_chars().str.split("")
        toks = toks.list.eval(pl.element().filter(pl.element() != ""))
    lengths = toks.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = toks.explode().drop_nulls().to_arrow()
    return flat, lengths


def _token_hashes(flat: pa.Array) -> np.ndarray:
    """Hash each distinct token once; blake2b keeps ids stable across runs and versions."""
    if len(flat) == 0:
        return np.zeros(0, np.uint64)
    enc = pc.dictionary_encode(flat)
    uniq = enc.dictionary.to_pylist()
    digests = b"".join(hashlib.blake2b(t.encode(), digest_size=8).digest() for t in uniq)
    table = np.frombuffer(digests, dtype="<u8").astype(np.uint64)
    return table[enc.indices.to_numpy(zero_copy_only=False)]


def shingle_hashes(texts: Sequence[str], *, shingle: str = "word", ngram: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of each text's set of n-gram shingles, in CSR layout.

    Text is lowercased; ``"word"`` shingles are runs of ``\\w`` characters (punctuation is
    ignored), ``"char"`` shingles are characters of the text with punctuation removed and
    whitespace collapsed. A text shorter than ``ngram`` tokens has one shingle (all of its
    tokens); an empty text has one fixed shingle, so empty texts are duplicates of each
    other and never of anything else.

    Returns
    -------
    (hashes, offsets)
        uint32 shingle hashes and int64 offsets: text ``i`` owns
        ``hashes[offsets[i]:offsets[i + 1]]`` (at least one; repeats are harmless).

    Examples
    --------
    >>> h, off = shingle_hashes(["a b c d", "A, b c!", ""], ngram=3)
    >>> off.tolist()
    [0, 2, 3, 4]
    >>> bool(h[0] == h[2])  # "a b c" in both
    True
    """
    if shingle not in ("word", "char"):
        msg = f"shingle must be 'word' or 'char', got {shingle!r}"
        raise ConfigError(msg)
    if ngram < 1:
        msg = f"ngram must be >= 1, got {ngram}"
        raise ConfigError(msg)
    flat, ntok = _tokens(texts, shingle)
    h = _token_hashes(flat)
    tok_off = np.concatenate([[0], np.cumsum(ntok)])[:-1]
    nsh = np.maximum(ntok - ngram + 1, 1)
    offsets = np.concatenate([[0], np.cumsum(nsh)]).astype(np.int64)
    total = int(offsets[-1])
    doc_of = np.repeat(np.arange(len(ntok)), nsh)
    start = tok_off[doc_of] + (np.arange(total) - offsets[:-1][doc_of])
    width = np.minimum(ntok, ngram)[doc_of]
    g = np.full(total, _EMPTY_SEED, np.uint64)
    for j in range(ngram):
        m = j < width
        if not m.any():
            break
        g[m] = (g[m] ^ h[start[m] + j]) * _FNV
    return (_mix64(g) >> np.uint64(32)).astype(np.uint32), offsets


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
    b = rng.integers(0, 2**63, num_perm, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, num_perm, dtype=np.uint64)
    return a, b


def minhash_signatures(hashes: np.ndarray, offsets: np.ndarray, *, num_perm: int = 112, seed: int = 1, chunk_cells: int = 1 << 16) -> np.ndarray:
    """``(n, num_perm)`` uint32 MinHash signatures of the CSR shingle sets.

    Permutation ``p`` is Dietzfelbinger's multiply-add-shift hash
    ``((a_p * x + b_p) mod 2^64) >> 32`` (``a_p`` odd), a 2-independent family for 32-bit
    keys computed in wrapping uint64 arithmetic, for all permutations at once as one
    ``(shingles, num_perm)`` matrix per chunk, followed by a segmented minimum per text.
    Chunks of about ``chunk_cells`` cells (512 KiB) are computed in place in one reused
    buffer, which keeps them in cache: 4x faster than chunks of 64 MiB.

    Examples
    --------
    >>> h, off = shingle_hashes(["the cat sat on the mat", "the cat sat on a mat"])
    >>> sig = minhash_signatures(h, off, num_perm=8, seed=0)
    >>> sig.shape, sig.dtype.name
    ((2, 8), 'uint32')
    """
    a, b = _permutations(num_perm, seed)
    n = len(offsets) - 1
    sig = np.empty((n, num_perm), np.uint32)
    x = hashes.astype(np.uint64)
    step = max(1, chunk_cells // num_perm)
    buf = np.empty((2 * step, num_perm), np.uint64)
    doc = 0
    while doc < n:
        # a chunk of whole texts holding about `step` shingles (at least one text)
        end = int(np.searchsorted(offsets, offsets[doc] + step, side="right")) - 1
        end = min(max(end, doc + 1), n)
        lo, hi = int(offsets[doc]), int(offsets[end])
        if hi - lo > len(buf):
            buf = np.empty((hi - lo, num_perm), np.uint64)
        v = buf[: hi - lo]
        np.multiply(x[lo:hi, None], a[None, :], out=v)
        np.add(v, b[None, :], out=v)
        np.right_shift(v, np.uint64(32), out=v)
        sig[doc:end] = np.minimum.reduceat(v, offsets[doc:end] - lo, axis=0)
        doc = end
    return sig


def optimal_bands(threshold: float, num_perm: int, *, recall: float = 0.98) -> tuple[int, int]:
    """``(bands, rows)`` for LSH: the most rows per band (fewest spurious candidates) with
    ``bands = num_perm // rows`` such that a pair at exactly ``threshold`` is still a
    candidate with probability ``1 - (1 - threshold^rows)^bands >= recall``.

    Candidates are verified by their estimated Jaccard, so a spurious candidate costs a
    comparison, never precision; a missed one is lost. datasketch's ``_optimal_param``
    balances both error areas instead, which for 112 permutations and 0.7 gives 12 x 9:
    only 39% of pairs at J = 0.7 (82% at 0.8) become candidates.

    Examples
    --------
    >>> optimal_bands(0.7, 112)
    (22, 5)
    >>> optimal_bands(0.5, 128), optimal_bands(0.9, 112)
    ((42, 3), (11, 10))
    """
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= recall:
            best = (bands, rows)
    return best


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(n, bands)`` uint64 keys: a hash of each band's ``rows`` signature entries."""
    n = sig.shape[0]
    keys = np.empty((n, bands), np.uint64)
    for band in range(bands):
        k = np.full(n, np.uint64(band) ^ _EMPTY_SEED, np.uint64)
        for col in sig[:, band * rows:(band + 1) * rows].T:
            k = (k ^ col.astype(np.uint64)) * _FNV
        keys[:, band] = _mix64(k)
    return keys


def candidate_pairs(keys: np.ndarray, *, window: int = _WINDOW) -> np.ndarray:
    """``(m, 2)`` index pairs ``i < j`` of rows with equal ``keys`` (one band).

    Rows of a bucket are taken in index order and each is paired with the next ``window``
    members, which is every pair for buckets of up to ``window + 1`` rows and stays linear
    for huge buckets (a template repeated 100k times); chains keep such buckets connected.

    Examples
    --------
    >>> import numpy as np
    >>> candidate_pairs(np.array([5, 7, 5, 5], np.uint64)).tolist()
    [[0, 2], [2, 3], [0, 3]]
    """
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    out = []
    for d in range(1, min(window, len(ks) - 1) + 1):
        m = ks[:-d] == ks[d:]
        if not m.any():
            break
        out.append(np.stack([order[:-d][m], order[d:][m]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def estimated_jaccard(sig: np.ndarray, pairs: np.ndarray, *, chunk: int = 1 << 16) -> np.ndarray:
    """Share of equal signature entries for each pair: an unbiased Jaccard estimate."""
    out = np.empty(len(pairs), np.float64)
    for s in range(0, len(pairs), chunk):
        p = pairs[s:s + chunk]
        out[s:s + chunk] = (sig[p[:, 0]] == sig[p[:, 1]]).mean(axis=1)
    return out


def duplicate_clusters(sig: np.ndarray, *, bands: int, rows: int, threshold: float, window: int = _WINDOW) -> np.ndarray:
    """Connected-component label per row over LSH candidates with estimated Jaccard >= threshold.

    Bands are processed one at a time and pairs already in one component are skipped, so
    the pair lists never hold all bands at once. Labels are arbitrary ints; rows with no
    duplicate have a label of their own.

    Examples
    --------
    >>> h, off = shingle_hashes(["a b c d e", "a b c d e", "x y z w v"])
    >>> lab = duplicate_clusters(minhash_signatures(h, off), bands=12, rows=9, threshold=0.7)
    >>> bool(lab[0] == lab[1]), bool(lab[0] == lab[2])
    (True, False)
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = sig.shape[0]
    labels = np.arange(n, dtype=np.int64)
    keys = band_keys(sig, bands, rows)
    for band in range(bands):
        pairs = candidate_pairs(keys[:, band], window=window)
        if len(pairs) == 0:
            continue
        pairs = pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]]
        pairs = pairs[estimated_jaccard(sig, pairs) >= threshold]
        if len(pairs) == 0:
            continue
        u, v = labels[pairs[:, 0]], labels[pairs[:, 1]]
        graph = coo_matrix((np.ones(len(u), np.int8), (u, v)), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        labels = comp[labels].astype(np.int64)
    return labels


def cluster_keepers(labels: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """For each row, the index of the row its component keeps.

    ``scores=None`` keeps the lowest index; otherwise the highest score (NaN lowest), ties
    to the lowest index.

    Examples
    --------
    >>> import numpy as np
    >>> cluster_keepers(np.array([4, 4, 9, 4])).tolist()
    [0, 0, 2, 0]
    >>> cluster_keepers(np.array([4, 4, 9, 4]), np.array([1.0, 3.0, 0.0, 3.0])).tolist()
    [1, 1, 2, 1]
    """
    n = len(labels)
    idx = np.arange(n)
    if scores is None:
        order = np.lexsort((idx, labels))
    else:
        s = np.where(np.isnan(scores), -np.inf, scores)
        order = np.lexsort((idx, -s, labels))
    first = np.ones(n, bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    rep_of_label = np.empty(n, np.int64)
    starts = order[first]
    # map each row to its group's first row in `order`
    group = np.cumsum(first) - 1
    rep_of_label[order] = starts[group]
    return rep_of_label


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
