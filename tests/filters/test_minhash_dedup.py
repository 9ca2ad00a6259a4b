"""filters.dedup.minhash (+ signatures, lsh): pure functions on hand-made inputs, the stage on Alpaca."""
from __future__ import annotations

import itertools
import json
import random
import re

import numpy as np
import pyarrow as pa
import pytest

from filters.dedup.lsh import (
    band_keys,
    candidate_pairs,
    cluster_keepers,
    duplicate_clusters,
    estimated_jaccard,
    optimal_bands,
)
from filters.dedup.minhash import MinHashDedup
from filters.dedup.signatures import minhash_signatures, shingle_hashes
from pipelines.errors import ConfigError, SchemaError
from pipelines.stage import REASON


def exact_shingles(text: str, n: int = 3) -> set:
    """Independent reference: the same shingles as sets of strings."""
    toks = re.findall(r"\w+", text.lower())
    if len(toks) < n:
        return {" ".join(toks)}
    return {" ".join(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


def check_contract(table: pa.Table, kept: pa.Table, rejected: pa.Table) -> None:
    assert kept.num_rows + rejected.num_rows == table.num_rows
    assert sorted(kept.column("id").to_pylist() + rejected.column("id").to_pylist()) == sorted(table.column("id").to_pylist())


# -- shingles ------------------------------------------------------------------------

def test_shingles_ignore_case_and_punctuation():
    h, off = shingle_hashes(["Give three tips, for staying healthy.", "give three tips for staying HEALTHY!"])
    assert off.tolist() == [0, 4, 8]
    assert h[0:4].tolist() == h[4:8].tolist()


def test_short_and_empty_texts_have_one_shingle():
    h, off = shingle_hashes(["hello world", "hello world", "hello", "", "  ...  ", None], ngram=3)
    assert np.diff(off).tolist() == [1, 1, 1, 1, 1, 1]
    assert h[0] == h[1] and h[0] != h[2]
    assert h[3] == h[4] == h[5]  # empty after normalisation: duplicates of each other only
    assert h[3] not in (h[0], h[2])


def test_shingle_hashes_are_stable_across_calls_and_orders():
    a, _ = shingle_hashes(["a b c d", "x y z"])
    b, _ = shingle_hashes(["x y z", "a b c d"])
    assert a.tolist() == b[1:].tolist() + b[:1].tolist()


def test_char_shingles():
    h, off = shingle_hashes(["abcde", "ABCDE!", "abcdf"], shingle="char", ngram=3)
    assert np.diff(off).tolist() == [3, 3, 3]
    assert h[0:3].tolist() == h[3:6].tolist()
    assert h[0:2].tolist() == h[6:8].tolist() and h[2] != h[8]


def test_shingle_arguments_are_checked():
    with pytest.raises(ConfigError, match="shingle must be"):
        shingle_hashes(["x"], shingle="token")
    with pytest.raises(ConfigError, match="ngram must be"):
        shingle_hashes(["x"], ngram=0)


# -- signatures and LSH --------------------------------------------------------------

def test_signature_estimates_jaccard():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**32, 400, dtype=np.uint64).astype(np.uint32)
    # set A = base[:300], set B = base[100:400]: J = 200 / 400 = 0.5
    hashes = np.concatenate([base[:300], base[100:400]])
    off = np.array([0, 300, 600])
    sig = minhash_signatures(hashes, off, num_perm=512, seed=3)
    est = estimated_jaccard(sig, np.array([[0, 1]]))[0]
    assert abs(est - 0.5) < 0.06
    # chunking does not change the result; the seed does
    assert (minhash_signatures(hashes, off, num_perm=512, seed=3, chunk_cells=1000) == sig).all()
    assert not (minhash_signatures(hashes, off, num_perm=512, seed=4) == sig).all()


def test_signature_is_a_set_function():
    sig = minhash_signatures(np.array([5, 9, 5, 9, 9], np.uint32), np.array([0, 2, 5]), num_perm=16)
    assert (sig[0] == sig[1]).all()


def test_optimal_bands_favour_recall_at_the_threshold():
    for threshold, num_perm in [(0.7, 112), (0.5, 128), (0.8, 256), (0.9, 112)]:
        b, r = optimal_bands(threshold, num_perm)
        assert b * r <= num_perm
        assert 1 - (1 - threshold**r) ** b >= 0.98
        b2 = num_perm // (r + 1)
        assert 1 - (1 - threshold ** (r + 1)) ** b2 < 0.98  # one more row would lose recall
    assert optimal_bands(0.7, 112) == (22, 5)


def test_candidate_pairs_window_keeps_big_buckets_linear():
    keys = np.zeros(1000, np.uint64)
    pairs = candidate_pairs(keys, window=2)
    assert len(pairs) == 999 + 998
    assert (pairs[:, 0] < pairs[:, 1]).all()
    assert len(candidate_pairs(np.arange(10, dtype=np.uint64))) == 0


def test_band_keys_equal_iff_band_equal():
    sig = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [7, 2, 3, 4]], np.uint32)
    k = band_keys(sig, 2, 2)
    assert k[0, 0] == k[1, 0] and k[0, 1] != k[1, 1]
    assert k[0, 1] == k[2, 1] and k[0, 0] != k[2, 0]


def test_clusters_are_transitive_and_keepers_follow_keep_rule():
    texts = ["one two three four five six seven eight",
             "one two three four five six seven eight nine",
             "completely different words in this one here",
             "one two three four five six seven eight nine ten"]
    h, off = shingle_hashes(texts)
    sig = minhash_signatures(h, off, num_perm=256)
    lab = duplicate_clusters(sig, bands=32, rows=8, threshold=0.6)
    assert lab[0] == lab[1] == lab[3] != lab[2]
    assert cluster_keepers(lab).tolist() == [0, 0, 2, 0]
    assert cluster_keepers(lab, np.array([1.0, np.nan, 0.0, 5.0])).tolist() == [3, 3, 2, 3]


# -- the stage -----------------------------------------------------------------------

def test_stage_rejects_near_duplicates_with_reason():
    t = pa.table({
        "id": ["a", "b", "c", "d", "e"],
        "instruction": ["Give three tips for staying healthy.", "Write a poem about the sea.",
                        "give three tips for staying healthy!!", "Give three tips for staying healthy.",
                        "Name three tips for staying healthy."],
    })
    kept, rejected = MinHashDedup().process(t)
    check_contract(t, kept, rejected)
    assert kept.column("id").to_pylist() == ["a", "b", "e"]
    assert dict(zip(rejected.column("id").to_pylist(), rejected.column(REASON).to_pylist())) == {
        "c": "duplicate_of:a", "d": "duplicate_of:a"}


def test_stage_keeps_best_score_and_joins_columns():
    t = pa.table({
        "id": ["a", "b", "c"],
        "instruction": ["Explain photosynthesis to a child", "Explain photosynthesis to a child", "Explain photosynthesis to a child"],
        "input": ["", "", "in one sentence please now"],
        "score": [1.0, 3.0, 9.0],
    })
    kept, rejected = MinHashDedup(keep="score").process(t)
    assert kept.column("id").to_pylist() == ["c"]
    assert rejected.column(REASON).to_pylist() == ["duplicate_of:c", "duplicate_of:c"]
    kept, rejected = MinHashDedup(column=["instruction", "input"], keep="score").process(t)
    assert kept.column("id").to_pylist() == ["b", "c"]
    assert rejected.column(REASON).to_pylist() == ["duplicate_of:b"]


def test_stage_keep_column_must_be_numeric():
    t = pa.table({"id": ["a"], "instruction": ["x"], "score": ["high"]})
    with pytest.raises(SchemaError, match="expected a number"):
        MinHashDedup(keep="score").process(t)


def test_stage_accepts_large_string_ids_in_chunks():
    # regression: binary_join_element_wise had no kernel for (string, large_string, string)
    t = pa.table({"id": pa.array(["a", "b", "c"], pa.large_string()),
                  "instruction": pa.array(["same words in here", "other text entirely now", "same words in here"], pa.large_string())})
    t = pa.concat_tables([t.slice(0, 1), t.slice(1)])
    kept, rejected = MinHashDedup().process(t)
    assert kept.column("id").to_pylist() == ["a", "b"]
    assert rejected.column(REASON).to_pylist() == ["duplicate_of:a"]


def test_stage_handles_empty_table():
    t = pa.table({"id": pa.array([], pa.string()), "instruction": pa.array([], pa.string())})
    kept, rejected = MinHashDedup().process(t)
    assert kept.num_rows == rejected.num_rows == 0


@pytest.mark.parametrize("params, match", [
    ({"bands": 4}, "both bands and rows"),
    ({"bands": 20, "rows": 8}, "fit in num_perm"),
    ({"threshold": 0.0}, "threshold"),
    ({"shingle": "sentence"}, "shingle"),
    ({"ngram": 0}, "ngram"),
    ({"column": []}, "at least one column"),
    ({"colum": "x"}, "unknown parameter"),
])
def test_stage_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        MinHashDedup(**params)


def test_stage_declares_columns():
    st = MinHashDedup(column=["instruction", "input"], keep="score")
    assert st.is_global and set(st.requires) == {"id", "instruction", "input", "score"}
    assert st.params["bands"] == 22 and st.params["rows"] == 5


@pytest.fixture(scope="module")
def perturbed_alpaca(shared_data):
    """300 Alpaca instructions plus 300 edited copies (a word dropped, added or replaced)."""
    rows = json.loads((shared_data / "seeds" / "alpaca_data_random5000.json").read_text())[:300]
    rng = random.Random(0)
    texts = [r["instruction"] for r in rows]
    for i in range(300):
        words = texts[i].split()
        j = rng.randrange(len(words))
        op = rng.random()
        if op < 0.3 and len(words) > 3:
            words = words[:j] + words[j + 1:]
        elif op < 0.6:
            words = words[:j] + ["really"] + words[j:]
        elif op < 0.8:
            words[j] = "zzz"
        texts.append(" ".join(words))
    return pa.table({"id": [f"r{i}" for i in range(600)], "instruction": texts})


def test_recall_and_precision_vs_exact_jaccard(perturbed_alpaca):
    t = perturbed_alpaca
    texts = t.column("instruction").to_pylist()
    kept, rejected = MinHashDedup().process(t)
    check_contract(t, kept, rejected)
    sets = [exact_shingles(x) for x in texts]
    index = {i: k for k, i in enumerate(t.column("id").to_pylist())}
    keeper = {r: r for r in kept.column("id").to_pylist()}
    for rid, reason in zip(rejected.column("id").to_pylist(), rejected.column(REASON).to_pylist()):
        assert reason.startswith("duplicate_of:")
        keeper[rid] = reason.split(":", 1)[1]
        assert keeper[rid] in {r for r in kept.column("id").to_pylist()}  # points at a kept row
    # recall: pairs with exact J >= 0.7 end up in one cluster (pairs near 0.7 pass the
    # estimated-Jaccard check about half the time: 112 permutations give it a std of 0.04)
    ids = t.column("id").to_pylist()
    pair_j = [(a, b, jaccard(sets[a], sets[b])) for a, b in itertools.combinations(range(600), 2)]
    same = {(a, b): keeper[ids[a]] == keeper[ids[b]] for a, b, j in pair_j if j >= 0.7}
    assert len(same) > 100
    assert np.mean(list(same.values())) >= 0.85
    assert np.mean([same[a, b] for a, b, j in pair_j if j >= 0.8]) >= 0.97
    # precision: a removed row is similar to the row kept in its place
    sims = [jaccard(sets[index[r]], sets[index[k]]) for r, k in keeper.items() if r != k]
    assert np.mean(np.array(sims) >= 0.5) >= 0.95
