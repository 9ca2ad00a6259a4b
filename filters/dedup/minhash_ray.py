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
4. **connected components**: on the driver from the edge list (scipy) when it has at most
   ``driver_edges_max`` edges; otherwise as a distributed job, alternating the large-star
   and small-star rounds of Kiveris et al. (2014, "Connected Components in MapReduce and
   Beyond", O(log^2 n) rounds; each round one groupby of the edges by node) until every
   component is a star around its lowest row, the min label. Then one keeper per component
   with :func:`~filters.dedup.lsh.cluster_keepers`, on the driver or in a groupby by label.

Memory per node grows with its share of the signatures and band records (1/P of them), never
with the text. On the driver path the driver holds the verified edges (16 bytes + two ids
per edge: it grows with the duplicates, not the corpus); on the distributed path it holds
only the result, one row per duplicate.

The result equals the local stage's on the same rows in the same order: the same
signatures, the same candidate pairs, the same verification rule and the same keepers (the
local stage skips pairs already in one component, which never changes the components).
Shuffles use Ray Data's pull-based sort shuffle (tasks only): the hash shuffle's aggregator
actors cost ~10 s per job on a 2-CPU local cluster and ran out of memory on a busy box.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.dedup.lsh import _WINDOW, band_keys, cluster_keepers
from filters.dedup.signatures import minhash_signatures, shingle_hashes

__all__ = ["DRIVER_EDGES_MAX", "ROW", "bucket_pairs", "components_keepers", "driver_keepers", "large_star", "ray_duplicates", "ray_edges", "ray_keepers", "small_star", "star_labels"]

ROW = "__row"  # the global row index (position in the concatenated input)
# verified edges resolved on the driver up to this many: ~40 bytes each with ids and scores
DRIVER_EDGES_MAX = 5_000_000

# one schema for everything the verification shuffles carry: signature records (kind 0)
# and pair records (kind 1) travel in the same groups
_REC = pa.schema([("part", pa.int64()), ("kind", pa.int8()), ("node", pa.int64()), ("other", pa.int64()),
                  ("sig", pa.binary()), ("id", pa.string()), ("score", pa.float64()),
                  ("sig_o", pa.binary()), ("id_o", pa.string()), ("score_o", pa.float64())])
# the label join: label records (id null) and attribute records (label null) of a node
_NODE = pa.schema([("part", pa.int64()), ("node", pa.int64()), ("label", pa.int64()), ("id", pa.string()), ("score", pa.float64())])
_DUPS = pa.schema([("row", pa.int64()), ("keeper_row", pa.int64()), ("keeper_id", pa.string())])
_EMPTY = np.zeros(0, np.int64)


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


def components_keepers(i: np.ndarray, j: np.ndarray, scores: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(dup_rows, keeper_rows)`` from verified edges ``i[k] -- j[k]``: every row of a
    component except the one it keeps (lowest row, or highest score with ties to the lowest
    row). ``scores`` is ``(score of i[k], score of j[k])``; NaN counts lowest.

    Examples
    --------
    >>> import numpy as np
    >>> d, k = components_keepers(np.array([3, 7, 1]), np.array([7, 9, 2]))
    >>> d.tolist(), k.tolist()
    ([2, 7, 9], [1, 3, 3])
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes, first = np.unique(np.concatenate([i, j]), return_index=True)  # ascending: row order
    if len(nodes) == 0:
        return _EMPTY, _EMPTY
    u, v = np.searchsorted(nodes, i), np.searchsorted(nodes, j)
    graph = coo_matrix((np.ones(len(u), np.int8), (u, v)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=False)
    s = None if scores is None else np.concatenate(scores).astype(np.float64)[first]
    keeper = cluster_keepers(labels.astype(np.int64), s)
    dup = keeper != np.arange(len(nodes))
    return nodes[dup], nodes[keeper[dup]]


# -- connected components by label propagation (pure steps; the Ray job maps them) -------
def _sorted_unique(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs ``(a, b)`` with ``a != b``, sorted by ``a`` then ``b``."""
    keep = a != b
    a, b = a[keep], b[keep]
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    new = np.ones(len(a), bool)
    new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[new], b[new]


def _groups(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``a`` sorted: group start positions, group sizes and each element's group."""
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]]) if len(a) else _EMPTY
    sizes = np.diff(np.r_[starts, len(a)])
    return starts, sizes, np.repeat(np.arange(len(starts)), sizes)


def large_star(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One large-star step over directed records ``u -> v`` holding *every* neighbour of each
    ``u`` present: each node links its larger neighbours to the minimum of its closed
    neighbourhood. Returns the new edges ``(lo, hi)`` (``lo < hi``) and the nodes that break
    the star condition (a smaller neighbour and degree >= 2).

    When no node breaks it, every component is a star around its minimum (a node with a
    smaller neighbour is a leaf; so that neighbour has none: the centre) and the output
    edges equal the input ones.

    Examples
    --------
    >>> import numpy as np
    >>> u, v = np.array([1, 2, 2, 3]), np.array([2, 1, 3, 2])  # the path 1 - 2 - 3
    >>> lo, hi, bad = large_star(u, v)
    >>> sorted(zip(lo.tolist(), hi.tolist())), bad.tolist()
    ([(1, 2), (1, 3)], [2])
    """
    u, v = _sorted_unique(u, v)
    starts, sizes, grp = _groups(u)
    nodes, smallest = u[starts], v[starts]  # sorted by (u, v): a group's first v is its least
    m = np.minimum(nodes, smallest)
    bad = nodes[(smallest < nodes) & (sizes >= 2)]
    up = v > u
    return m[grp][up], v[up], bad


def small_star(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One small-star step over edges ``lo < hi`` holding every smaller neighbour of each
    ``hi`` present: each node and its smaller neighbours are linked to the least of them.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = small_star(np.array([1, 2]), np.array([3, 3]))  # 3 has smaller neighbours 1, 2
    >>> sorted(zip(a.tolist(), b.tolist()))
    [(1, 2), (1, 3)]
    """
    u, w = _sorted_unique(hi, lo)
    starts, _, grp = _groups(u)
    m = w[starts]
    other = w != m[grp]
    return np.concatenate([m[grp][other], m]), np.concatenate([w[other], u[starts]])


def star_labels(i: np.ndarray, j: np.ndarray, *, max_rounds: int = 1000) -> tuple[np.ndarray, np.ndarray, int]:
    """``(nodes, labels, rounds)``: each node of the edges ``i -- j`` labelled with the least
    node of its component, by the same large-star / small-star rounds as the Ray job (in
    one process; the reference the distributed path is checked against).

    Examples
    --------
    >>> import numpy as np
    >>> n, lab, _ = star_labels(np.array([5, 1, 8, 2]), np.array([9, 2, 9, 7]))
    >>> dict(zip(n.tolist(), lab.tolist()))
    {1: 1, 2: 1, 5: 5, 7: 1, 8: 5, 9: 5}
    """
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    for rounds in range(1, max_rounds + 1):
        lo, hi, bad = large_star(np.concatenate([lo, hi]), np.concatenate([hi, lo]))
        if len(bad) == 0:
            break
        lo, hi = small_star(lo, hi)
    else:
        msg = f"star_labels: no convergence in {max_rounds} rounds"
        raise RuntimeError(msg)
    nodes = np.unique(np.concatenate([lo, hi]))
    labels = nodes.copy()
    labels[np.searchsorted(nodes, hi)] = lo
    return nodes, labels, rounds


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


# -- label propagation as Ray groupbys ----------------------------------------------------
def _directed(batch: pa.Table, *, partitions: int, lo: str = "lo", hi: str = "hi") -> pa.Table:
    """Edges as records ``u -> v`` in both directions, keyed on ``u`` (large-star's input)."""
    a, b = batch.column(lo).to_numpy(), batch.column(hi).to_numpy()
    keep = a != b  # drops the marker rows of the previous round
    u, v = np.concatenate([a[keep], b[keep]]), np.concatenate([b[keep], a[keep]])
    return pa.table({"part": pa.array(u % partitions, pa.int64()), "u": pa.array(u, pa.int64()), "v": pa.array(v, pa.int64())})


def _large_group(group: pa.Table) -> pa.Table:
    lo, hi, bad = large_star(group.column("u").to_numpy(), group.column("v").to_numpy())
    # a node that breaks the star condition leaves a marker row (lo == hi, bad = 1)
    flags = np.r_[np.zeros(len(lo), np.int64), np.ones(len(bad), np.int64)]
    return pa.table({"lo": pa.array(np.r_[lo, bad], pa.int64()), "hi": pa.array(np.r_[hi, bad], pa.int64()), "bad": pa.array(flags)})


def _by_hi(batch: pa.Table, *, partitions: int) -> pa.Table:
    """Edges keyed on their larger end (small-star's input), markers dropped."""
    lo, hi = batch.column("lo").to_numpy(), batch.column("hi").to_numpy()
    keep = lo != hi
    return pa.table({"part": pa.array(hi[keep] % partitions, pa.int64()), "lo": pa.array(lo[keep], pa.int64()), "hi": pa.array(hi[keep], pa.int64())})


def _small_group(group: pa.Table) -> pa.Table:
    lo, hi = small_star(group.column("lo").to_numpy(), group.column("hi").to_numpy())
    return pa.table({"lo": pa.array(lo, pa.int64()), "hi": pa.array(hi, pa.int64())})


def _count_bad(batch: pa.Table) -> pa.Table:
    return pa.table({"bad": pa.array([int(pc.sum(batch.column("bad")).as_py() or 0)], pa.int64())})


def _label_records(batch: pa.Table, *, partitions: int) -> pa.Table:
    """Star edges (centre, leaf) -> ``(node, label)`` for both ends, keyed on the node."""
    lo, hi = batch.column("lo").to_numpy(), batch.column("hi").to_numpy()
    keep = lo != hi
    node, label = np.concatenate([hi[keep], lo[keep]]), np.concatenate([lo[keep], lo[keep]])
    n = len(node)
    return pa.table({"part": pa.array(node % partitions, pa.int64()), "node": pa.array(node, pa.int64()), "label": pa.array(label, pa.int64()),
                     "id": pa.nulls(n, pa.string()), "score": pa.nulls(n, pa.float64())}, schema=_NODE)


def _attr_records(batch: pa.Table, *, partitions: int) -> pa.Table:
    """Verified edges -> ``(node, id, score)`` of both ends, keyed on the node."""
    node = np.concatenate([batch.column("i").to_numpy(), batch.column("j").to_numpy()])
    ids = pa.chunked_array(batch.column("id_i").chunks + batch.column("id_j").chunks, pa.string())
    score = pa.chunked_array(batch.column("score_i").chunks + batch.column("score_j").chunks, pa.float64())
    return pa.table({"part": pa.array(node % partitions, pa.int64()), "node": pa.array(node, pa.int64()), "label": pa.nulls(len(node), pa.int64()),
                     "id": ids, "score": score}, schema=_NODE)


def _node_group(group: pa.Table, *, partitions: int) -> pa.Table:
    """One partition of nodes: each node's label joined with its id and score, re-keyed on the label."""
    is_label = pc.is_valid(group.column("label"))
    labels, attrs = group.filter(is_label), group.filter(pc.invert(is_label))
    ln, ll = labels.column("node").to_numpy(), labels.column("label").to_numpy()
    order = np.lexsort((ll, ln))
    ln, ll = ln[order], ll[order]
    first = np.r_[True, ln[1:] != ln[:-1]] if len(ln) else np.zeros(0, bool)
    nodes, label = ln[first], ll[first]  # one label per node (a centre repeats its own)
    an = attrs.column("node").to_numpy()
    a_nodes, a_first = np.unique(an, return_index=True)
    if not np.array_equal(a_nodes, nodes):
        msg = f"label propagation lost nodes: {len(a_nodes)} nodes in the edges, {len(nodes)} labelled"
        raise RuntimeError(msg)
    at = pa.array(a_first)
    return pa.table({"part": pa.array(label % partitions, pa.int64()), "node": pa.array(nodes, pa.int64()), "label": pa.array(label, pa.int64()),
                     "id": attrs.column("id").take(at), "score": attrs.column("score").take(at)}, schema=_NODE)


def _keeper_group(group: pa.Table, *, by_score: bool) -> pa.Table:
    """Whole components (all nodes of a label): every node but the keeper, with the keeper."""
    node, label = group.column("node").to_numpy(), group.column("label").to_numpy()
    order = np.lexsort((node, label))  # row order within a label: ties go to the lowest row
    group, node, label = group.take(pa.array(order)), node[order], label[order]
    scores = group.column("score").to_numpy(zero_copy_only=False).astype(np.float64) if by_score else None
    keeper = cluster_keepers(label, scores)
    dup = np.flatnonzero(keeper != np.arange(len(node)))
    return pa.table({"row": pa.array(node[dup], pa.int64()), "keeper_row": pa.array(node[keeper[dup]], pa.int64()),
                     "keeper_id": group.column("id").take(pa.array(keeper[dup]))}, schema=_DUPS)


def _sum(ds: Any, column: str) -> int:
    """Sum of an integer column without pulling the column to the driver (one value per block)."""
    return sum(int(b.column(column)[0].as_py()) for b in ds.map_batches(_count_bad, batch_format="pyarrow", batch_size=None).iter_batches(batch_format="pyarrow", batch_size=None) if b.num_rows)


def _collect(ds: Any, schema: pa.Schema) -> pa.Table:
    parts = [b for b in ds.iter_batches(batch_format="pyarrow", batch_size=None) if b.num_rows]
    return pa.concat_tables(parts) if parts else schema.empty_table()


# -- the job ------------------------------------------------------------------------------
class _SortShuffle:
    """Ray Data's pull-based sort shuffle for one job (tasks only, no aggregator actors)."""

    def __init__(self, ds: Any) -> None:
        self.ctx = ds.context

    def __enter__(self) -> None:
        from ray.data.context import ShuffleStrategy

        self.old = self.ctx.shuffle_strategy
        self.ctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED

    def __exit__(self, *exc: object) -> None:
        self.ctx.shuffle_strategy = self.old


def ray_edges(ds: Any, *, columns: list[str], shingle: str, ngram: int, num_perm: int, seed: int, bands: int, rows: int,
              threshold: float, keep: str = "first", window: int = _WINDOW, partitions: int = 2) -> Any:
    """The verified near-duplicate edges of ``ds``'s rows, a materialized Ray dataset with
    columns ``i < j`` (rows), ``id_i``, ``id_j``, ``score_i``, ``score_j`` (steps 1-3)."""
    with _SortShuffle(ds):
        sigs = ds.map_batches(_signatures, batch_format="pyarrow", batch_size=None, zero_copy_batch=True,
                              fn_kwargs={"columns": columns, "shingle": shingle, "ngram": ngram, "num_perm": num_perm, "seed": seed, "keep": keep}).materialize()
        cand = (sigs.map_batches(_band_records, batch_format="pyarrow", batch_size=None, fn_kwargs={"bands": bands, "rows": rows, "num_perm": num_perm, "partitions": partitions})
                .groupby("part", num_partitions=partitions).map_groups(_bucket_group, batch_format="pyarrow", fn_kwargs={"window": window}))
        recs = sigs.map_batches(_sig_records, batch_format="pyarrow", batch_size=None, fn_kwargs={"partitions": partitions})
        step1 = recs.union(cand.map_batches(_pair_records, batch_format="pyarrow", batch_size=None, fn_kwargs={"partitions": partitions})) \
            .groupby("part", num_partitions=partitions).map_groups(_attach, batch_format="pyarrow", fn_kwargs={"partitions": partitions, "flip": False})
        step2 = recs.union(step1).groupby("part", num_partitions=partitions).map_groups(_attach, batch_format="pyarrow", fn_kwargs={"partitions": partitions, "flip": True})
        return step2.map_batches(_verify, batch_format="pyarrow", batch_size=None, fn_kwargs={"num_perm": num_perm, "threshold": threshold}).materialize()


def driver_keepers(edges: Any, *, keep: str = "first") -> pa.Table:
    """Step 4 on the driver: the edge list pulled here, components by scipy."""
    e = _collect(edges, pa.schema([("i", pa.int64()), ("j", pa.int64()), ("id_i", pa.string()), ("id_j", pa.string()), ("score_i", pa.float64()), ("score_j", pa.float64())]))
    if e.num_rows == 0:
        return _DUPS.empty_table()
    i, j = e.column("i").to_numpy(), e.column("j").to_numpy()
    scores = None
    if keep != "first":
        scores = (e.column("score_i").to_numpy(zero_copy_only=False), e.column("score_j").to_numpy(zero_copy_only=False))
    dup, keeper = components_keepers(i, j, scores)
    nodes, first = np.unique(np.concatenate([i, j]), return_index=True)
    ids = pa.chunked_array(e.column("id_i").chunks + e.column("id_j").chunks, pa.string())
    keeper_id = ids.take(pa.array(first[np.searchsorted(nodes, keeper)]))
    return pa.table({"row": pa.array(dup, pa.int64()), "keeper_row": pa.array(keeper, pa.int64()), "keeper_id": keeper_id}, schema=_DUPS)


def ray_keepers(edges: Any, *, keep: str = "first", partitions: int = 2, max_rounds: int = 100) -> tuple[pa.Table, int]:
    """Step 4 as a distributed job: ``(duplicates, rounds)``; the driver sees one count per
    block per round and the result, never the edges.

    Each round is a large-star groupby (by node, both directions of every edge), which also
    counts the nodes breaking the star condition; while any do, a small-star groupby (by the
    larger end) follows. Then one groupby by node joins labels with ids and scores, and one
    by label picks each component's keeper.
    """
    with _SortShuffle(edges):
        cur = edges.map_batches(_directed, batch_format="pyarrow", batch_size=None, fn_kwargs={"partitions": partitions, "lo": "i", "hi": "j"})
        for rounds in range(1, max_rounds + 1):
            stars = cur.groupby("part", num_partitions=partitions).map_groups(_large_group, batch_format="pyarrow").materialize()
            if _sum(stars, "bad") == 0:
                break
            cur = (stars.map_batches(_by_hi, batch_format="pyarrow", batch_size=None, fn_kwargs={"partitions": partitions})
                   .groupby("part", num_partitions=partitions).map_groups(_small_group, batch_format="pyarrow")
                   .map_batches(_directed, batch_format="pyarrow", batch_size=None, fn_kwargs={"partitions": partitions}))
        else:
            msg = f"ray_keepers: label propagation did not converge in {max_rounds} rounds"
            raise RuntimeError(msg)
        labels = stars.map_batches(_label_records, batch_format="pyarrow", batch_size=None, fn_kwargs={"partitions": partitions})
        attrs = edges.map_batches(_attr_records, batch_format="pyarrow", batch_size=None, fn_kwargs={"partitions": partitions})
        nodes = labels.union(attrs).groupby("part", num_partitions=partitions).map_groups(_node_group, batch_format="pyarrow", fn_kwargs={"partitions": partitions})
        dups = nodes.groupby("part", num_partitions=partitions).map_groups(_keeper_group, batch_format="pyarrow", fn_kwargs={"by_score": keep != "first"})
        return _collect(dups, _DUPS), rounds


def ray_duplicates(ds: Any, *, columns: list[str], shingle: str, ngram: int, num_perm: int, seed: int, bands: int, rows: int,
                   threshold: float, keep: str = "first", window: int = _WINDOW, partitions: int | None = None,
                   driver_edges_max: int = DRIVER_EDGES_MAX) -> pa.Table:
    """Near-duplicates of the rows of a Ray dataset: ``{row, keeper_row, keeper_id}``, one
    row per duplicate, sorted by row (rows kept for their cluster, and rows without
    duplicates, are absent).

    ``ds`` holds the text ``columns``, ``id``, the ``keep`` column unless ``"first"``, and
    :data:`ROW`, the row's position in the input (keepers are chosen by it). ``partitions``
    (default: the cluster's CPUs, at least 2) is the number of shuffle partitions: memory per
    partition is about 1/``partitions`` of the signatures and band records. Components are
    resolved on the driver when there are at most ``driver_edges_max`` verified edges, by
    distributed label propagation (:func:`ray_keepers`) otherwise; both give the same result.
    """
    import logging

    import ray

    if partitions is None:
        partitions = max(2, int(ray.cluster_resources().get("CPU", 2)))
    edges = ray_edges(ds, columns=columns, shingle=shingle, ngram=ngram, num_perm=num_perm, seed=seed, bands=bands, rows=rows,
                      threshold=threshold, keep=keep, window=window, partitions=partitions)
    n = edges.count()
    log = logging.getLogger("aligncraft")
    if n <= driver_edges_max:
        dups = driver_keepers(edges, keep=keep)
        log.info("minhash (ray): %d verified edges, components on the driver", n)
    else:
        dups, rounds = ray_keepers(edges, keep=keep, partitions=partitions)
        log.info("minhash (ray): %d verified edges > driver_edges_max=%d: label propagation in %d rounds", n, driver_edges_max, rounds)
    return dups.sort_by("row")
