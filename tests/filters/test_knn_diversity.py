"""filters.dedup.knn_diversity: Magpie's three tags on hand-made vectors and on Alpaca."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from filters.dedup.embedding import EmbeddingDedup
from filters.dedup.knn_diversity import KnnDiversity, neighbor_stats
from filters.embeddings import embedding_array, knn, normalize
from pipelines.errors import ConfigError


def _table(emb: np.ndarray) -> pa.Table:
    ids = [f"r{i}" for i in range(len(emb))]
    return pa.table({"id": ids, "instruction": ids, "embedding": embedding_array(normalize(emb))})


def test_neighbor_stats_skip_self_wherever_it_appears():
    # exact duplicates may come back before the row itself
    d = np.array([[0.0, 0.0, 0.3], [0.0, 0.0, 0.3], [0.3, 0.3, 0.9]], np.float32)
    i = np.array([[1, 0, 2], [0, 1, 2], [2, 0, 1]])
    md, rc, ms = neighbor_stats(np.array([0, 1, 2]), d, i, 0.05)
    assert md.tolist() == pytest.approx([0.0, 0.0, 0.3])
    assert rc.tolist() == [1, 1, 0]
    assert ms.tolist() == [0, 0, -1]


def test_neighbor_stats_handles_missing_neighbours():
    md, rc, ms = neighbor_stats(np.array([0]), np.array([[0.0, -1.0]], np.float32), np.array([[0, -1]]), 0.05)
    assert np.isnan(md[0]) and rc[0] == 0 and ms[0] == -1


def test_stage_tags_and_keeps_every_row():
    ang = np.deg2rad([0, 5, 90, 8, 180])
    t = _table(np.stack([np.cos(ang), np.sin(ang)], 1).astype(np.float32))
    kept, rejected = KnnDiversity(threshold=0.01).process(t)
    assert kept.num_rows == 5 and rejected.num_rows == 0
    assert kept.schema.field("min_neighbor_distance").type == pa.float64()
    assert kept.schema.field("repeat_count").type == pa.int64()
    assert kept.column("repeat_count").to_pylist() == [1, 2, 0, 1, 0]
    assert kept.column("min_similar_uuid").to_pylist() == ["r0", "r0", None, "r1", None]
    d = kept.column("min_neighbor_distance").to_pylist()
    assert d[0] == pytest.approx(2 - 2 * np.cos(np.deg2rad(5)), abs=1e-6)
    assert d[2] == pytest.approx(2 - 2 * np.cos(np.deg2rad(82)), abs=1e-6)
    assert kept.schema == KnnDiversity(threshold=0.01).output_schema(t.schema)


def test_stage_small_k_and_single_row():
    emb = normalize(np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32))
    kept, _ = KnnDiversity(k=1).process(_table(emb))
    d, _ = knn(emb, 2)
    np.testing.assert_allclose(kept.column("min_neighbor_distance").to_numpy(), np.maximum(d[:, 1], 0), atol=1e-6)
    one, _ = KnnDiversity().process(_table(emb[:1]))
    assert one.column("min_neighbor_distance").to_pylist() == [None]
    assert one.column("repeat_count").to_pylist() == [0]
    assert one.column("min_similar_uuid").to_pylist() == [None]


def test_stage_output_embedding_option():
    st = KnnDiversity(output_embedding=True)
    assert st.adds["embedding"] == pa.list_(pa.float32())
    emb = normalize(np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32))
    kept, _ = st.process(_table(emb))
    np.testing.assert_allclose(np.array(kept.column("embedding").to_pylist()), emb, atol=1e-6)
    assert "embedding" not in KnnDiversity().adds


@pytest.mark.parametrize("params, match", [({"k": 0}, "k must be"), ({"threshold": -1}, "threshold"), ({"index": "lsh"}, "index")])
def test_stage_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        KnnDiversity(**params)


@pytest.mark.model
def test_stage_on_alpaca_agrees_with_embedding_dedup(shared_data):
    rows = json.loads((shared_data / "seeds" / "alpaca_data_random5000.json").read_text())[:150]
    texts = [r["instruction"] for r in rows]
    texts += texts[:8]  # exact copies: repeat_count >= 1, min_similar_uuid = the original
    t = pa.table({"id": [f"a{i}" for i in range(len(texts))], "instruction": texts})
    kept, rejected = KnnDiversity(output_embedding=True).process(t)
    assert kept.num_rows == 158 and rejected.num_rows == 0
    rc = kept.column("repeat_count").to_pylist()
    ms = kept.column("min_similar_uuid").to_pylist()
    for i in range(8):
        assert rc[150 + i] >= 1 and ms[150 + i] == ms[i] and ms[i] is not None
    d = np.array(kept.column("min_neighbor_distance").to_pylist())
    assert (d >= 0).all() and (d[150:] < 1e-5).all()
    # Magpie's dedup rule on these tags == EmbeddingDedup (k covers all 157 neighbours)
    keep_rule = [m is None or m == i for m, i in zip(ms, t.column("id").to_pylist())]
    kept2, _ = EmbeddingDedup().process(kept)
    assert kept2.column("id").to_pylist() == [i for i, k in zip(t.column("id").to_pylist(), keep_rule) if k]


def test_default_threshold_follows_the_model():
    from filters.embeddings import MINILM_THRESHOLD

    assert (KnnDiversity().params["threshold"], KnnDiversity().params["threshold_for"]) == (MINILM_THRESHOLD, "all-MiniLM-L6-v2")
    mpnet = KnnDiversity(model="all-mpnet-base-v2").params
    assert (mpnet["threshold"], mpnet["threshold_for"]) == (0.05, "all-mpnet-base-v2")
