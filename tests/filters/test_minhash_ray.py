"""Distributed MinHash (filters/dedup/minhash_ray.py) on a local Ray cluster: the same
clusters, keepers and reasons as the local stage on the same rows."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from filters.dedup.lsh import candidate_pairs
from filters.dedup.minhash import MinHashDedup
from filters.dedup.minhash_ray import ROW, bucket_pairs, components_keepers

ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 1024**2, log_to_driver=False, logging_level="ERROR")
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_bucket_pairs_equal_candidate_pairs_per_band():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 6, 200).astype(np.uint64)
    local = {tuple(p) for p in candidate_pairs(keys, window=3).tolist()}
    shuffled = rng.permutation(200)  # rows arrive in any order after a shuffle
    ours = {tuple(p) for p in bucket_pairs(keys[shuffled], shuffled, window=3).tolist()}
    assert ours == local


def test_components_keepers_chain_and_scores():
    dup, keeper = components_keepers(np.array([0, 1, 5]), np.array([1, 2, 6]), {0: 1.0, 1: 3.0, 2: 3.0, 5: np.nan, 6: 0.0})
    assert dict(zip(dup.tolist(), keeper.tolist())) == {0: 1, 2: 1, 5: 6}


def rows(alpaca_rows: list[dict], n: int = 600) -> pa.Table:
    base = [r["instruction"] for r in alpaca_rows[:n]]
    rng = np.random.default_rng(1)
    texts = []
    for k, t in enumerate(base):  # a third get a near-duplicate (one word changed or added)
        texts.append(t)
        if k % 3 == 0:
            w = t.split()
            w[int(rng.integers(0, len(w)))] = "really"
            texts.append(" ".join(w) + (" please" if k % 2 else ""))
    return pa.table({"id": [f"r{k:05d}" for k in range(len(texts))], "instruction": texts, "score": rng.random(len(texts))})


@pytest.mark.parametrize("keep", ["first", "score"])
def test_distributed_dedup_finds_the_local_clusters(cluster, shared_data, keep):
    import json

    from ray.data import from_arrow

    from filters.dedup.minhash_ray import ray_duplicates

    data = json.loads((shared_data / "seeds" / "alpaca_data_random5000.json").read_text())
    table = rows(data)
    stage = MinHashDedup(column="instruction", threshold=0.5, ngram=2, keep=keep)
    _kept, rejected = stage.process(table)
    assert rejected.num_rows > 50  # the test has duplicates to find
    shards = [table.slice(s, 97) for s in range(0, table.num_rows, 97)]
    ds = from_arrow([t.append_column(ROW, pa.array(np.arange(s * 97, s * 97 + t.num_rows), pa.int64())) for s, t in enumerate(shards)])
    p = stage.params
    dups = ray_duplicates(ds, columns=["instruction"], shingle=p["shingle"], ngram=p["ngram"], num_perm=p["num_perm"], seed=p["seed"],
                          bands=p["bands"], rows=p["rows"], threshold=p["threshold"], keep=keep, partitions=3)
    ids = table.column("id").to_pylist()
    ours = {ids[r]: f"duplicate_of:{k}" for r, k in zip(dups.column("row").to_pylist(), dups.column("keeper_id").to_pylist())}
    local = dict(zip(rejected.column("id").to_pylist(), rejected.column("reject_reason").to_pylist()))
    assert ours == local
