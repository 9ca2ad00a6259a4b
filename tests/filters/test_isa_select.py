"""filters.select.isa: the two entropy readings as pure functions; the stage."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from filters.embeddings import embed, embedding_array
from filters.select.isa import (
    IsaSelect,
    entropy_change_scores,
    gmm_scores,
    posterior_entropy_scores,
    top_fraction,
)
from pipelines.errors import ConfigError
from pipelines.stage import REASON


def test_entropy_change_equals_leave_one_out_of_plug_in_entropy():
    logp = np.random.default_rng(0).normal(-5, 2, 50)
    h = -logp.mean()
    brute = np.array([h - (-np.delete(logp, i).mean()) for i in range(50)])
    np.testing.assert_allclose(entropy_change_scores(logp), brute, rtol=1e-10, atol=1e-12)
    # ranks like -log p (the cheap per-sample approximation)
    assert (np.argsort(entropy_change_scores(logp)) == np.argsort(-logp)).all()
    assert entropy_change_scores(np.array([-1.0])).tolist() == [0.0]


def test_posterior_entropy():
    r = np.array([[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    np.testing.assert_allclose(posterior_entropy_scores(r), [0.0, np.log(2), -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))])


def test_top_fraction_rounds_up_and_breaks_ties_by_row():
    assert top_fraction(np.array([3.0, 1.0, 3.0, 2.0]), 0.25).tolist() == [True, False, False, False]
    assert top_fraction(np.array([3.0, 1.0, 3.0, 2.0]), 0.3).tolist() == [True, False, True, False]
    assert top_fraction(np.arange(10.0), 1.0).all()
    assert top_fraction(np.zeros(0), 0.1).tolist() == []


def _two_blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (100, 5)) + np.array([1, 0, 0, 0, 0])
    b = rng.normal(0, 0.1, (100, 5)) + np.array([-1, 0, 0, 0, 0])
    outliers = np.array([[0, 3, 0, 0, 0], [0, 0, -3, 0, 0]], float)  # far from both
    middle = np.array([[0, 0, 0, 0, 0.0]])  # between the blobs
    return np.concatenate([a, b, outliers, middle]).astype(np.float32)


def test_gmm_readings_pick_what_they_say():
    x = _two_blobs()
    ec = gmm_scores(x, score="entropy_change", pca_dim=None)
    assert set(np.argsort(-ec)[:3].tolist()) == {200, 201, 202}  # least likely under the model
    pe = gmm_scores(x, score="posterior_entropy", pca_dim=None)
    assert int(np.argmax(pe)) in (200, 201, 202)  # ambiguous between the two components
    assert pe[202] > np.percentile(pe[:200], 99)
    # deterministic for a seed
    np.testing.assert_array_equal(ec, gmm_scores(x, score="entropy_change", pca_dim=None))


def test_gmm_scores_degenerate_sizes():
    assert gmm_scores(np.ones((2, 4), np.float32)).tolist() == [0.0, 0.0]
    assert gmm_scores(np.random.default_rng(0).normal(size=(5, 50)).astype(np.float32), pca_dim=32).shape == (5,)
    with pytest.raises(ConfigError, match="score must be"):
        gmm_scores(np.ones((5, 2)), score="variance")


def _table(emb: np.ndarray) -> pa.Table:
    ids = [f"r{i}" for i in range(len(emb))]
    return pa.table({"id": ids, "instruction": ids, "embedding": embedding_array(emb)})


@pytest.mark.parametrize("score", ["entropy_change", "posterior_entropy"])
def test_stage_keeps_fraction_and_scores_all_rows(score):
    x = _two_blobs()
    t = _table(x)
    st = IsaSelect(fraction=0.05, score=score, pca_dim=None)
    kept, rejected = st.process(t)
    assert kept.num_rows == 11 and rejected.num_rows == 192
    assert set(rejected.column(REASON).to_pylist()) == {"isa_not_selected"}
    assert kept.schema.field("isa_score").type == pa.float64()
    assert min(kept.column("isa_score").to_pylist()) >= max(rejected.column("isa_score").to_pylist())
    assert kept.schema == st.output_schema(t.schema)


def test_stage_config_errors():
    for params, match in [({"fraction": 0}, "fraction"), ({"fraction": 1.5}, "fraction"), ({"score": "kl"}, "score"),
                          ({"covariance_type": "banded"}, "covariance_type"), ({"pca_dim": 0}, "pca_dim")]:
        with pytest.raises(ConfigError, match=match):
            IsaSelect(**params)


@pytest.mark.model
def test_stage_on_alpaca(shared_data):
    rows = json.loads((shared_data / "seeds" / "alpaca_data_random5000.json").read_text())[:150]
    t = pa.table({"id": [f"a{i}" for i in range(150)], "instruction": [r["instruction"] for r in rows]})
    kept, rejected = IsaSelect().process(t)
    assert kept.num_rows == 15 and rejected.num_rows == 135
    assert set(rejected.column(REASON).to_pylist()) == {"isa_not_selected"}
    # seeded: the same rows again, here from an embedding column
    t = t.append_column("embedding", embedding_array(embed(t.column("instruction").to_pylist())))
    kept2, _ = IsaSelect().process(t)
    assert kept.column("id").to_pylist() == kept2.column("id").to_pylist()
    k3, _ = IsaSelect(score="posterior_entropy", fraction=0.035).process(t)
    assert k3.num_rows == 6


def _unequal_mixture() -> tuple[np.ndarray, dict[str, list[int]]]:
    """A 120/80 two-blob mixture (centres +-2 on axis 0), 4 outliers and 2 points midway."""
    rng = np.random.default_rng(1)
    big = rng.normal(0, 0.3, (120, 4)) + np.array([2, 0, 0, 0])
    small = rng.normal(0, 0.3, (80, 4)) + np.array([-2, 0, 0, 0])
    outliers = np.array([[0, 3, 0, 0], [0, -3, 0, 0], [2, 0, 3, 0], [-2, 0, 0, -3]], float)
    middle = np.array([[0, 0, 0, 0], [0.2, 0.1, 0, 0]], float)
    return np.concatenate([big, small, outliers, middle]), {"outliers": [200, 201, 202, 203], "middle": [204, 205]}


# Bug (issue 10, item 14): the default was described as "the most informative fraction"
# while it keeps the 10% least likely rows under the GMM (the tails, outliers first). This
# shows which rows each reading keeps at the default fraction; the docstring and the card
# (the stage's `keeps` parameter) now say it in words.
def test_which_rows_each_reading_keeps_on_a_synthetic_mixture():
    x, groups = _unequal_mixture()
    ec = top_fraction(gmm_scores(x, score="entropy_change", pca_dim=None), 0.10)  # 21 of 206 rows
    kept = set(np.flatnonzero(ec).tolist())
    assert set(groups["outliers"]) | set(groups["middle"]) <= kept  # every rare row
    # the other 15 are each blob's own tail: farther from their centre than 90% of blob rows
    centre = np.where(x[:, :1] > 0, [2, 0, 0, 0], [-2, 0, 0, 0])
    dist = np.linalg.norm(x - centre, axis=1)
    blob_kept = sorted(kept - set(groups["outliers"]) - set(groups["middle"]))
    assert len(blob_kept) == 15 and np.median(dist[blob_kept]) > np.percentile(dist[:200], 90)
    # posterior entropy ranks the two midway rows first and ignores how far out a row lies
    pe = gmm_scores(x, score="posterior_entropy", pca_dim=None)
    assert set(np.argsort(-pe)[:2].tolist()) == set(groups["middle"])
    assert IsaSelect().params["keeps"].startswith("the least likely rows")
    assert IsaSelect(score="posterior_entropy").params["keeps"].startswith("the rows between")
