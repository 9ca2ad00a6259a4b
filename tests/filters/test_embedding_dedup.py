"""filters.dedup.embedding: Magpie's dedup rule on hand-made vectors and on Alpaca."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from filters.dedup.embedding import EmbeddingDedup, earliest_duplicate, radius_for
from filters.embeddings import embedding_array, normalize
from pipelines.errors import ConfigError
from pipelines.stage import REASON


def _table(vectors, ids=None) -> pa.Table:
    emb = normalize(np.asarray(vectors, np.float32))
    ids = ids or [f"r{i}" for i in range(len(emb))]
    return pa.table({"id": ids, "instruction": [f"text {i}" for i in ids], "embedding": embedding_array(emb)})


def test_earliest_duplicate_ignores_self_and_later_rows():
    emb = np.array([[0.0], [3.0], [0.1], [3.1], [9.0], [0.05]], np.float32)
    assert earliest_duplicate(emb, 0.05).tolist() == [2, 3, 0, 1, -1, 0]
    assert earliest_duplicate(emb, 0.05, chunk_size=2).tolist() == [2, 3, 0, 1, -1, 0]


def test_radius_for():
    assert radius_for(0.05, "l2") == 0.05
    assert radius_for(0.9, "cosine") == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="metric"):
        radius_for(0.1, "dot")


def test_stage_magpie_rule_and_reasons():
    # unit vectors at angles 0, 5, 90, 8, 180 degrees: d2(0, 5 deg) = 0.0076, d2(5, 8) = 0.0027
    ang = np.deg2rad([0, 5, 90, 8, 180])
    t = _table(np.stack([np.cos(ang), np.sin(ang)], 1), ids=["a", "b", "c", "d", "e"])
    kept, rejected = EmbeddingDedup(threshold=0.01).process(t)
    assert kept.num_rows + rejected.num_rows == 5
    assert kept.column("id").to_pylist() == ["a", "c", "e"]
    # d (8 deg) is 0.0195 from a: its earliest duplicate is b, itself removed (Magpie's chain rule)
    assert rejected.column("id").to_pylist() == ["b", "d"]
    assert rejected.column(REASON).to_pylist() == ["duplicate_of:a", "duplicate_of:b"]


def test_stage_accepts_large_string_ids():
    # regression: the reason concatenation failed on large_string ids
    t = _table([[1.0, 0.0], [1.0, 0.001]])
    t = t.set_column(0, "id", t.column("id").cast(pa.large_string()))
    _, rejected = EmbeddingDedup().process(t)
    assert rejected.column(REASON).to_pylist() == ["duplicate_of:r0"]


def test_stage_cosine_threshold_is_the_same_boundary():
    ang = np.deg2rad([0, 5, 90, 8, 180])
    t = _table(np.stack([np.cos(ang), np.sin(ang)], 1))
    k1, _ = EmbeddingDedup(threshold=0.05).process(t)
    k2, _ = EmbeddingDedup(metric="cosine", model="all-mpnet-base-v2").process(t)  # mpnet's default 0.975 == d2 0.05
    assert k1.column("id").to_pylist() == k2.column("id").to_pylist()


def test_stage_config_errors():
    with pytest.raises(ConfigError, match="radius"):
        EmbeddingDedup(threshold=0.0)
    with pytest.raises(ConfigError, match="metric"):
        EmbeddingDedup(metric="ip")
    st = EmbeddingDedup(column=["instruction", "response"])
    assert st.is_global and set(st.requires) == {"id", "instruction", "response"}


@pytest.mark.model
def test_stage_on_alpaca_with_injected_copies(shared_data):
    rows = json.loads((shared_data / "seeds" / "alpaca_data_random5000.json").read_text())[:150]
    texts = [r["instruction"] for r in rows]
    # exact and case/punctuation copies of the first 10, appended at the end
    copies = [texts[i] for i in range(5)] + [texts[i].upper().rstrip(".") for i in range(5, 10)]
    ids = [f"a{i}" for i in range(150)] + [f"copy{i}" for i in range(10)]
    t = pa.table({"id": ids, "instruction": texts + copies})
    kept, rejected = EmbeddingDedup().process(t)
    assert kept.num_rows + rejected.num_rows == 160
    reasons = dict(zip(rejected.column("id").to_pylist(), rejected.column(REASON).to_pylist()))
    for i in range(5):
        assert reasons[f"copy{i}"] == f"duplicate_of:a{i}"
    assert sum(f"copy{i}" in reasons for i in range(5, 10)) >= 3  # uppercase changes MiniLM tokens
    assert all(r.startswith("duplicate_of:a") for r in reasons.values())
    assert len(reasons) < 30


@pytest.mark.model
def test_default_threshold_is_minilms_and_recorded():
    from filters.embeddings import MINILM_THRESHOLD

    t = pa.table({"id": ["a", "b", "c"], "instruction": [
        "Give three tips for staying healthy.", "Give me three tips to stay healthy.", "Give three tips for saving money."]})
    stage = EmbeddingDedup()
    assert (stage.params["threshold"], stage.params["threshold_for"]) == (MINILM_THRESHOLD, "all-MiniLM-L6-v2")
    kept, rejected = stage.process(t)
    assert kept.column("id").to_pylist() == ["a", "c"]
    assert rejected.column(REASON).to_pylist() == ["duplicate_of:a"]
    mpnet = EmbeddingDedup(model="sentence-transformers/all-mpnet-base-v2")
    assert (mpnet.params["threshold"], mpnet.params["threshold_for"]) == (0.05, "all-mpnet-base-v2")
    assert EmbeddingDedup(threshold=0.1).params["threshold_for"] == "given"
