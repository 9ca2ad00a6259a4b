"""filters.select.deita_select: the blocked selection equals the naive loop; the stage's reasons."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from filters.embeddings import embed, embedding_array, normalize
from filters.select.deita_select import DeitaSelect, score_order
from filters.select.diverse import select_diverse, select_diverse_naive
from pipelines.errors import ConfigError, SchemaError
from pipelines.stage import REASON


def clustered(n: int, dim: int, per: int, noise: float, seed: int = 0) -> np.ndarray:
    """n unit vectors around n / per random centres."""
    rng = np.random.default_rng(seed)
    centres = normalize(rng.standard_normal((max(1, n // per), dim)).astype(np.float32))
    x = centres[rng.integers(0, len(centres), n)] + noise * rng.standard_normal((n, dim)).astype(np.float32) / np.sqrt(dim)
    return normalize(x)


def assert_same(emb, order, tau, budget, block=64):
    fast = select_diverse(emb, order, tau, budget, block=block, return_blockers=True)
    slow = select_diverse_naive(emb, order, tau, budget, return_blockers=True)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert np.array_equal(select_diverse(emb, order, tau, budget, block=block), fast[0])
    return fast


def test_hand_made_selection_and_blockers():
    emb = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.6, 0.8], [0.7, 0.714]], np.float32)
    sel, blk = assert_same(emb, np.arange(5), 0.9, None)
    assert sel.tolist() == [0, 2, 3]
    # row 4 is 0.99 from row 3 and 0.71 from row 2: blocked by the most similar, row 3
    assert blk.tolist() == [-1, 0, -1, -1, 3]


def test_tau_is_inclusive_and_budget_stops_examining():
    emb = normalize(np.array([[1, 0], [0.9, np.sqrt(1 - 0.81)], [0, 1], [-1, 0]], np.float32))
    # cos(row0, row1) == 0.9 up to float rounding: decided exactly in float64 by both
    sel, _ = assert_same(emb, np.arange(4), 0.95, None)
    assert sel.tolist() == [0, 1, 2, 3]
    sel, blk = assert_same(emb, np.arange(4), 0.5, 2)
    assert sel.tolist() == [0, 2] and blk.tolist() == [-1, 0, -1, -1]  # row 3 never examined


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tau", [0.2, 0.5, 0.9])
def test_random_data_same_as_naive(seed, tau):
    rng = np.random.default_rng(seed)
    emb = normalize(rng.standard_normal((600, 12)).astype(np.float32))
    order = rng.permutation(600)
    assert_same(emb, order, tau, None, block=int(rng.integers(1, 200)))
    assert_same(emb, order, tau, 50)


@pytest.mark.parametrize("noise", [0.2, 0.33, 0.5])
def test_clustered_data_same_as_naive(noise, monkeypatch):
    import filters.select.diverse as mod

    dense_calls = []
    dense = mod._dense_top
    monkeypatch.setattr(mod, "_dense_top", lambda *a, **k: dense_calls.append(1) or dense(*a, **k))
    emb = clustered(6000, 64, 100, noise)
    order = np.random.default_rng(1).permutation(6000)
    sel, _ = assert_same(emb, order, 0.9, 600, block=512)
    if noise == 0.33:  # ~10 rows per cluster taken: the pruned search over groups does the work
        assert len(sel) > 500 and len(dense_calls) <= 4


def test_exact_duplicates_and_ties():
    rng = np.random.default_rng(5)
    base = normalize(rng.standard_normal((200, 8)).astype(np.float32))
    emb = np.concatenate([base, base, base[:50]])  # exact copies: blockers must agree on ties
    for tau in (0.0, 0.6, 0.95):
        sel, _ = assert_same(emb, rng.permutation(len(emb)), tau, None, block=37)
        taken = set(sel.tolist())
        assert not any({i, 200 + i} <= taken for i in range(200))  # never two copies of a row


def test_score_order_is_stable_with_nulls_last():
    assert score_order(np.array([2.0, np.nan, 5.0, 2.0, -1.0])).tolist() == [2, 0, 3, 4, 1]


def _stage_table(emb: np.ndarray, scores) -> pa.Table:
    ids = [f"r{i}" for i in range(len(emb))]
    return pa.table({"id": ids, "instruction": ids, "deita_score": pa.array(scores, pa.float64()),
                     "embedding": embedding_array(emb)})


def test_stage_reasons():
    emb = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.6, 0.8], [-1, 0]], np.float32)
    t = _stage_table(emb, [5.0, 9.0, 1.0, None, 3.0])
    kept, rejected = DeitaSelect(budget=2).process(t)
    assert kept.num_rows + rejected.num_rows == 5
    # order by score: r1 (9), r0 (5, too close to r1), r4 (3), r2 (1, budget full), r3 (null)
    assert kept.column("id").to_pylist() == ["r1", "r4"]
    assert dict(zip(rejected.column("id").to_pylist(), rejected.column(REASON).to_pylist())) == {
        "r0": "too_similar:r1", "r2": "over_budget", "r3": "over_budget"}


def test_stage_config_and_schema_errors():
    with pytest.raises(ConfigError, match="tau"):
        DeitaSelect(tau=1.5)
    with pytest.raises(ConfigError, match="budget"):
        DeitaSelect(budget=0)
    st = DeitaSelect(score_column="q", column=["instruction", "response"])
    assert st.is_global and set(st.requires) == {"id", "q", "instruction", "response"}
    t = pa.table({"id": ["a"], "instruction": ["x"], "deita_score": ["high"], "embedding": embedding_array(np.ones((1, 2), np.float32))})
    with pytest.raises(SchemaError, match="expected a number"):
        DeitaSelect().process(t)


@pytest.fixture(scope="module")
def alpaca_embeddings(shared_data):
    rows = json.loads((shared_data / "seeds" / "alpaca_data_random5000.json").read_text())[:600]
    return [r["instruction"] for r in rows], embed([r["instruction"] for r in rows])


@pytest.mark.model
@pytest.mark.parametrize("tau", [0.5, 0.7, 0.9])
def test_real_embeddings_same_as_naive(alpaca_embeddings, tau):
    _, emb = alpaca_embeddings
    order = np.random.default_rng(0).permutation(len(emb))
    _, blk = assert_same(emb, order, tau, 500, block=128)
    if tau <= 0.7:
        assert (blk >= 0).sum() > 0  # some rows were judged too similar


@pytest.mark.model
def test_stage_embeds_text(alpaca_embeddings):
    texts, emb = alpaca_embeddings
    texts = texts[:200] + texts[:5]
    t = pa.table({"id": [f"a{i}" for i in range(205)], "instruction": texts,
                  "deita_score": np.linspace(1, 36, 205)[::-1].copy()})
    kept, rejected = DeitaSelect(budget=None, tau=0.8).process(t)
    assert kept.num_rows + rejected.num_rows == 205
    kept_ids = set(kept.column("id").to_pylist())
    reasons = dict(zip(rejected.column("id").to_pylist(), rejected.column(REASON).to_pylist()))
    originals = [i for i in range(5) if f"a{i}" in kept_ids]
    assert len(originals) >= 3
    for i in originals:  # the copies score lower than their originals
        assert reasons[f"a{200 + i}"] == f"too_similar:a{i}"
    assert all(r.startswith("too_similar:") and r.split(":")[1] in kept_ids for r in reasons.values())
    # the same with the embeddings given as a column, and a budget
    t = t.append_column("embedding", embedding_array(np.concatenate([emb[:200], emb[:5]])))
    kept2, _ = DeitaSelect(budget=None, tau=0.8).process(t)
    assert kept2.column("id").to_pylist() == kept.column("id").to_pylist()
    kept, rejected = DeitaSelect(budget=100, tau=0.8).process(t)
    assert kept.num_rows == 100
    assert "a0" in set(kept.column("id").to_pylist())  # the best score is always taken
    assert "over_budget" in set(rejected.column(REASON).to_pylist())
