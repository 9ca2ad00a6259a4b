"""MinHash-LSH near-duplicate clusters as a distributed Ray Data job.

The same maths as :class:`filters.dedup.minhash.MinHashDedup` (signatures from
:mod:`filters.dedup.signatures`, band keys, bucket windows, verification and keepers from
:mod:`filters.dedup.lsh`), laid out so that no process holds more than its share:

1. **signatures** in map tasks: each block's text becomes ``(rows, num_perm)`` uint32
   signatures (stored as one binary value per row), with the row's global index, id and
   keep-score; the text is dropped there;
2. **band keys shuffled**: one record ``(partition, key, row)`` per row and band (keys
   already mix the band in), grouped by ``key % P``; each partition pairs the members of
   each bucket in row order with the next ``window`` members, exactly as
   :func:`~filters.dedup.lsh.candidate_pairs`;
3. **candidates verified**: two hash shuffles join each distinct pair with the signature of
   ``i`` (grouped by ``i % P``) and then of ``j`` (by ``j % P``); pairs whose estimated
   Jaccard is ``>= threshold`` become edges;
4. **connected components on the driver** from the edge list (16 bytes + two ids per edge:
   it grows with the duplicates, not the corpus), then one keeper per component with
   :func:`~filters.dedup.lsh.cluster_keepers`.

Memory per node grows with its share of the signatures and band records (1/P of them), never
with the text. The driver holds the verified edges; a corpus whose near-duplicate graph does
not fit one machine's memory (hundreds of millions of edges) needs label-propagation rounds
instead, which this module does not do.

The result equals the local stage's on the same rows in the same order: the same
signatures, the same candidate pairs, the same verification rule and the same keepers (the
local stage skips pairs already in one component, which never changes the components).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.dedup.lsh import _WINDOW, band_keys, cluster_keepers
from filters.dedup.signatures import minhash_signatures, shingle_hashes

__all__ = ["ROW", "bucket_pairs", "components_keepers", "ray_duplicates"]

ROW = "__row"  # the global row index (position in the concatenated input)

# one schema for everything the verification shuffles carry: signature records (kind 0)
# and pair records (kind 1) travel in the same groups
_REC = pa.schema([("part", pa.int64()), ("kind", pa.int8()), ("node", pa.int64()), ("other", pa.int64()),
                  ("sig", pa.binary()), ("id", pa.string()), ("score", pa.float64()),
                  ("sig_o", pa.binary()), ("id_o", pa.string()), ("score_o", pa.float64())])


def bucket_pairs(keys: np.ndarray, rows: np.ndarray, *, window: int = _WINDOW) -> np.ndarray:
    """``(m, 2)`` row pairs ``i < j`` sharing a key: members of a bucket in row order, each
    paired with the next ``window`` members (:func:`filters.dedup.lsh.candidate_pairs`'s rule).

    Examples
    --------
    >>> import numpy as np
    >>> bucket_pairs(np.array([5, 7, 5, 5], np.uint64), np.array([10, 11, 12, 13])).tolist()
    [[10, 12], [12, 13], [10, 13]]
    """
    order = np.lexsort((rows, keys))
    ks, rs = keys[order], rows[order]
    out = []
    for d in range(1, min(window, len(ks) - 1) + 1):
        m = ks[:-d] == ks[d:]
        if not m.any():
            break
        out.append(np.stack([rs[:-d][m], rs[d:][m]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def components_keepers(i: np.ndarray, j: np.ndarray, scores: dict[int, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(dup_rows, keeper_rows)`` from verified edges: every row of a component except the
    one it keeps (lowest row, or highest score with ties to the lowest row).

    Examples
    --------
    >>> import numpy as np
    >>> d, k = components_keepers(np.array([3, 7, 1]), np.array([7, 9, 2]))
    >>> d.tolist(), k.tolist()
    ([2, 7, 9], [1, 3, 3])
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = np.unique(np.concatenate([i, j]))  # ascending: compressed order = row order
    if len(nodes) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    u, v = np.searchsorted(nodes, i), np.searchsorted(nodes, j)
    graph = coo_matrix((np.ones(len(u), np.int8), (u, v)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=False)
    s = None if scores is None else np.array([scores.get(int(x), np.nan) for x in nodes], np.float64)
    keeper = cluster_keepers(labels.astype(np.int64), s)
    dup = keeper != np.arange(len(nodes))
    return nodes[dup], nodes[keeper[dup]]


# -- map and group functions (module level: Ray sends them by reference) ------------------
def _signatures(batch: pa.Table, *, columns: list[str], shingle: str, ngram: int, num_perm: int, seed: int, keep: str) -> pa.Table:
    from filters.embeddings import column_text

    h, off = shingle_hashes(column_text(batch, columns), shingle=shingle, ngram=ngram)
    sig = minhash_signatures(h, off, num_perm=num_perm, seed=seed)
    width = num_perm * 4
    sig_col = pa.Array.from_buffers(pa.binary(width), len(sig), [None, pa.py_buffer(np.ascontiguousarray(sig).tobytes())]).cast(pa.binary())
    if keep == "first":
        score = pa.nulls(batch.num_rows, pa.float64())
    else:
        score = pc.cast(batch.column(keep), pa.float64())
    return pa.table({ROW: batch.column(ROW), "id": pc.cast(batch.column("id"), pa.string()), "score": score, "sig": sig_col})


def _sig_matrix(col: pa.Array | pa.ChunkedArray, num_perm: int) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    arr = arr.cast(pa.binary(num_perm * 4))
    return np.frombuffer(arr.buffers()[1], np.uint32, count=len(arr) * num_perm, offset=arr.offset * num_perm * 4).reshape(len(arr), num_perm)


def _band_records(batch: pa.Table, *, bands: int, rows: int, num_perm: int, partitions: int) -> pa.Table:
    sig = _sig_matrix(batch.column("sig"), num_perm)
    keys = band_keys(sig, bands, rows).reshape(-1)  # row-major: (row, band)
    row = np.repeat(batch.column(ROW).to_numpy(), bands)
    return pa.table({"part": (keys % np.uint64(partitions)).astype(np.int64), "key": keys, "row": row})


def _bucket_group(group: pa.Table, *, window: int) -> pa.Table:
    p = bucket_pairs(group.column("key").to_numpy(), group.column("row").to_numpy(), window=window)
    if len(p):
        p = np.unique(p, axis=0)
    return pa.table({"i": pa.array(p[:, 0], pa.int64()), "j": pa.array(p[:, 1], pa.int64())})


def _sig_records(batch: pa.Table, *, partitions: int) -> pa.Table:
    n = batch.num_rows
    node = batch.column(ROW).to_numpy()
    return pa.table({"part": pa.array(node % partitions, pa.int64()), "kind": pa.array(np.zeros(n, np.int8)), "node": pa.array(node, pa.int64()),
                     "other": pa.nulls(n, pa.int64()), "sig": batch.column("sig"), "id": batch.column("id"), "score": batch.column("score"),
                     "sig_o": pa.nulls(n, pa.binary()), "id_o": pa.nulls(n, pa.string()), "score_o": pa.nulls(n, pa.float64())}, schema=_REC)


def _pair_records(batch: pa.Table, *, partitions: int) -> pa.Table:
    n = batch.num_rows
    i = batch.column("i").to_numpy()
    return pa.table({"part": pa.array(i % partitions, pa.int64()), "kind": pa.array(np.ones(n, np.int8)), "node": batch.column("i"), "other": batch.column("j"),
                     "sig": pa.nulls(n, pa.binary()), "id": pa.nulls(n, pa.string()), "score": pa.nulls(n, pa.float64()),
                     "sig_o": pa.nulls(n, pa.binary()), "id_o": pa.nulls(n, pa.string()), "score_o": pa.nulls(n, pa.float64())}, schema=_REC)


def _attach(group: pa.Table, *, partitions: int, flip: bool) -> pa.Table:
    """One partition: signature records of its nodes plus pair records keyed on them; each
    distinct pair gets its node's signature, id and score. ``flip`` re-keys the result on
    the other end of the pair for the second pass."""
    kind = group.column("kind").to_numpy()
    sigs, pairs = group.filter(pa.array(kind == 0)), group.filter(pa.array(kind == 1))
    if pairs.num_rows == 0:
        return _REC.empty_table()
    nodes = sigs.column("node").to_numpy()
    order = np.argsort(nodes)
    pn = pairs.column("node").to_numpy()
    po = pairs.column("other").to_numpy()
    if not flip:  # first pass: distinct pairs (bands repeat them across partitions)
        _, first = np.unique(np.stack([pn, po], axis=1), axis=0, return_index=True)
        pairs, pn, po = pairs.take(pa.array(first)), pn[first], po[first]
    at = order[np.searchsorted(nodes, pn, sorter=order)]
    take = pa.array(at)
    n = pairs.num_rows
    if not flip:
        # -> a record keyed on the other end, carrying this node's signature as `*_o`
        return pa.table({"part": pa.array(po % partitions, pa.int64()), "kind": pa.array(np.ones(n, np.int8)), "node": pa.array(po, pa.int64()), "other": pa.array(pn, pa.int64()),
                         "sig": pa.nulls(n, pa.binary()), "id": pa.nulls(n, pa.string()), "score": pa.nulls(n, pa.float64()),
                         "sig_o": sigs.column("sig").take(take), "id_o": sigs.column("id").take(take), "score_o": sigs.column("score").take(take)}, schema=_REC)
    return pairs.set_column(pairs.schema.get_field_index("sig"), "sig", sigs.column("sig").take(take)) \
        .set_column(pairs.schema.get_field_index("id"), "id", sigs.column("id").take(take)) \
        .set_column(pairs.schema.get_field_index("score"), "score", sigs.column("score").take(take))


def _verify(batch: pa.Table, *, num_perm: int, threshold: float) -> pa.Table:
    a, b = _sig_matrix(batch.column("sig"), num_perm), _sig_matrix(batch.column("sig_o"), num_perm)
    ok = (a == b).mean(axis=1) >= threshold if len(a) else np.zeros(0, bool)
    # node is the larger row (j), other the smaller (i)
    e = batch.filter(pa.array(ok))
    return pa.table({"i": e.column("other"), "j": e.column("node"), "id_i": e.column("id_o"), "id_j": e.column("id"),
                     "score_i": e.column("score_o"), "score_j": e.column("score")})


def ray_duplicates(ds: Any, *, columns: list[str], shingle: str, ngram: int, num_perm: int, seed: int, bands: int, rows: int,
                   threshold: float, keep: str = "first", window: int = _WINDOW, partitions: int | None = None) -> pa.Table:
    """Near-duplicates of the rows of a Ray dataset: ``{row, keeper_row, keeper_id}``, one
    row per duplicate (rows kept for their cluster, and rows without duplicates, are absent).

    ``ds`` holds the text ``columns``, ``id``, the ``keep`` column unless ``"first"``, and
    :data:`ROW`, the row's position in the input (keepers are chosen by it). ``partitions``
    (default: the cluster's CPUs, at least 2) is the number of shuffle partitions: memory per
    partition is about 1/``partitions`` of the signatures and band records.
    """
    import ray

    if partitions is None:
        partitions = max(2, int(ray.cluster_resources().get("CPU", 2)))
    sigs = ds.map_batches(_signatures, batch_format="pyarrow", batch_size=None, zero_copy_batch=True,
                          fn_kwargs={"columns": columns, "shingle": shingle, "ngram": ngram, "num_perm": num_perm, "seed": seed, "keep": keep}).materialize()
    cand = (sigs.map_batches(_band_records, batch_format="pyarrow", batch_size=None, fn_kwargs={"bands": bands, "rows": rows, "num_perm": num_perm, "partitions": partitions})
            .groupby("part", num_partitions=partitions).map_groups(_bucket_group, batch_format="pyarrow", fn_kwargs={"window": window}))
    recs = sigs.map_batches(_sig_records, batch_format="pyarrow", batch_size=None, fn_kwargs={"partitions": partitions})
    step1 = recs.union(cand.map_batches(_pair_records, batch_format="pyarrow", batch_size=None, fn_kwargs={"partitions": partitions})) \
        .groupby("part", num_partitions=partitions).map_groups(_attach, batch_format="pyarrow", fn_kwargs={"partitions": partitions, "flip": False})
    step2 = recs.union(step1).groupby("part", num_partitions=partitions).map_groups(_attach, batch_format="pyarrow", fn_kwargs={"partitions": partitions, "flip": True})
    edges = step2.map_batches(_verify, batch_format="pyarrow", batch_size=None, fn_kwargs={"num_perm": num_perm, "threshold": threshold})
    parts = [b for b in edges.iter_batches(batch_format="pyarrow", batch_size=None) if b.num_rows]
    if not parts:
        return pa.table({"row": pa.array([], pa.int64()), "keeper_row": pa.array([], pa.int64()), "keeper_id": pa.array([], pa.string())})
    e = pa.concat_tables(parts)
    i, j = e.column("i").to_numpy(), e.column("j").to_numpy()
    ids = dict(zip(np.concatenate([i, j]).tolist(), pa.chunked_array(e.column("id_i").chunks + e.column("id_j").chunks).to_pylist()))
    scores = None
    if keep != "first":
        sc = np.concatenate([e.column("score_i").to_numpy(zero_copy_only=False), e.column("score_j").to_numpy(zero_copy_only=False)])
        scores = dict(zip(np.concatenate([i, j]).tolist(), sc.tolist()))
    dup, keeper = components_keepers(i, j, scores)
    return pa.table({"row": pa.array(dup, pa.int64()), "keeper_row": pa.array(keeper, pa.int64()), "keeper_id": pa.array([ids[int(k)] for k in keeper], pa.string())})
