"""Distributed MinHash (filters/dedup/minhash_ray.py): the pure steps on hand-made inputs,
then on a local Ray cluster the same clusters, keepers and reasons as the local stage on the
same rows, by both ways of resolving components (driver and label propagation)."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from filters.dedup.lsh import candidate_pairs
from filters.dedup.minhash import MinHashDedup
from filters.dedup.minhash_ray import (
    ROW,
    bucket_pairs,
    components_keepers,
    large_star,
    small_star,
    star_labels,
)


def test_doctests():
    import doctest

    import filters.dedup.minhash_ray as mod

    res = doctest.testmod(mod)
    assert res.attempted >= 5 and res.failed == 0


def test_bucket_pairs_equal_candidate_pairs_per_band():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 6, 200).astype(np.uint64)
    local = {tuple(p) for p in candidate_pairs(keys, window=3).tolist()}
    shuffled = rng.permutation(200)  # rows arrive in any order after a shuffle
    ours = {tuple(p) for p in bucket_pairs(keys[shuffled], shuffled, window=3).tolist()}
    assert ours == local


def test_components_keepers_chain_and_scores():
    i, j = np.array([0, 1, 5]), np.array([1, 2, 6])
    scores = (np.array([1.0, 3.0, np.nan]), np.array([3.0, 3.0, 0.0]))  # rows 0, 1, 5 | 1, 2, 6
    dup, keeper = components_keepers(i, j, scores)
    assert dict(zip(dup.tolist(), keeper.tolist())) == {0: 1, 2: 1, 5: 6}  # tie 1 vs 2 -> 1; NaN lowest


def test_large_star_on_a_triangle_links_to_the_minimum_and_flags_the_middle():
    u, v = np.array([4, 7, 4, 9, 7, 9]), np.array([7, 4, 9, 4, 9, 7])  # triangle 4-7-9, both directions
    lo, hi, bad = large_star(u, v)
    assert sorted(set(zip(lo.tolist(), hi.tolist()))) == [(4, 7), (4, 9)]
    assert bad.tolist() == [7, 9]  # both have a smaller neighbour and degree 2


def test_small_star_links_smaller_neighbours_to_their_least():
    lo, hi = small_star(np.array([2, 5, 3, 1]), np.array([8, 8, 8, 4]))
    assert sorted(zip(lo.tolist(), hi.tolist())) == [(1, 4), (2, 3), (2, 5), (2, 8)]


def _scipy_labels(i, j):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = np.unique(np.concatenate([i, j]))
    u, v = np.searchsorted(nodes, i), np.searchsorted(nodes, j)
    _, comp = connected_components(coo_matrix((np.ones(len(u)), (u, v)), shape=(len(nodes),) * 2), directed=False)
    least = {c: nodes[comp == c].min() for c in np.unique(comp)}
    return nodes, np.array([least[c] for c in comp])


@pytest.mark.parametrize("graph", ["random", "path", "star_off_centre", "duplicates"])
def test_star_labels_equal_scipy_components(graph):
    rng = np.random.default_rng(3)
    if graph == "random":  # sparse: many small components and some big ones
        i, j = rng.integers(0, 400, 300), rng.integers(0, 400, 300)
    elif graph == "path":  # the worst case for plain label propagation: 300 hops, relabelled
        perm = rng.permutation(1000)[:301]
        i, j = perm[:-1], perm[1:]
    elif graph == "star_off_centre":  # centre 50 is not the component's minimum (3)
        i, j = np.full(40, 50), np.r_[np.arange(3, 42)[:39], 99]
    else:  # repeated edges in both directions and self-loops
        i, j = np.array([1, 2, 2, 5, 5, 6]), np.array([2, 1, 2, 6, 6, 5])
    keep = i != j
    nodes, labels, rounds = star_labels(i, j)
    want_nodes, want = _scipy_labels(i[keep], j[keep])
    assert nodes.tolist() == want_nodes.tolist()
    assert labels.tolist() == want.tolist()
    if graph == "path":
        assert rounds < 40  # O(log^2 n) rounds, not the 300 of min-label propagation


# -- on a local Ray cluster ------------------------------------------------------------
def rows(alpaca_rows: list[dict], n: int = 400) -> pa.Table:
    base = [r["instruction"] for r in alpaca_rows[:n]]
    rng = np.random.default_rng(1)
    texts = []
    for k, t in enumerate(base):  # a third get a near-duplicate, a fifth two (3-row components)
        texts.append(t)
        for extra in range((k % 3 == 0) + (k % 5 == 0)):
            w = t.split()
            w[int(rng.integers(0, len(w)))] = "really"
            texts.append(" ".join(w) + (" please" if (k + extra) % 2 else ""))
    return pa.table({"id": [f"r{k:05d}" for k in range(len(texts))], "instruction": texts, "score": rng.random(len(texts))})


def local_reasons(table: pa.Table, keep: str) -> dict[str, str]:
    _kept, rejected = MinHashDedup(column="instruction", threshold=0.5, ngram=2, keep=keep).process(table)
    assert rejected.num_rows > 50  # the test has duplicates to find
    return dict(zip(rejected.column("id").to_pylist(), rejected.column("reject_reason").to_pylist()))


def reasons(table: pa.Table, dups: pa.Table) -> dict[str, str]:
    ids = table.column("id").to_pylist()
    return {ids[r]: f"duplicate_of:{k}" for r, k in zip(dups.column("row").to_pylist(), dups.column("keeper_id").to_pylist())}


@pytest.fixture(scope="module")
def corpus(shared_data):
    data = json.loads((shared_data / "seeds" / "alpaca_data_random5000.json").read_text())
    return rows(data)


def dataset(table: pa.Table):
    from ray.data import from_arrow

    shards = [table.slice(s, 97) for s in range(0, table.num_rows, 97)]
    return from_arrow([t.append_column(ROW, pa.array(np.arange(s * 97, s * 97 + t.num_rows), pa.int64())) for s, t in enumerate(shards)])


PARAMS = MinHashDedup(column="instruction", threshold=0.5, ngram=2).params
JOB = {k: PARAMS[k] for k in ("shingle", "ngram", "num_perm", "seed", "bands", "rows", "threshold")}


def test_driver_and_label_propagation_give_the_local_clusters(ray_cluster, corpus):
    from filters.dedup.minhash_ray import driver_keepers, ray_edges, ray_keepers

    edges = ray_edges(dataset(corpus), columns=["instruction"], keep="score", partitions=3, **JOB)
    for keep in ("first", "score"):
        want = local_reasons(corpus, keep)
        assert reasons(corpus, driver_keepers(edges, keep=keep)) == want, keep
        dups, rounds = ray_keepers(edges, keep=keep, partitions=3)
        assert reasons(corpus, dups) == want, keep
        assert rounds >= 2  # the 3-row components are no stars at first: small-star ran


def test_ray_duplicates_switches_to_label_propagation_past_driver_edges_max(ray_cluster, corpus, caplog):
    import logging

    from filters.dedup.minhash_ray import ray_duplicates

    with caplog.at_level(logging.INFO, logger="aligncraft"):
        dups = ray_duplicates(dataset(corpus), columns=["instruction"], keep="score", partitions=2, driver_edges_max=0, **JOB)
    assert reasons(corpus, dups) == local_reasons(corpus, "score")
    assert "label propagation in" in caplog.text
