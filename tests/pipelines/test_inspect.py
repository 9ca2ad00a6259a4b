"""pipelines.inspect: frames on hand-made rows (every column family), and on a short CPU run.

``demo_runs`` makes the short runs once per session (the notebook and report tests use them
too): an SFT run over 50 real Alpaca rows plus planted copies, near copies and an empty
response (so every kind of rejection shows), and a pair run over 12 HH-RLHF transcripts.
"""
from __future__ import annotations

import doctest
import json
from pathlib import Path

import polars as pl
import pytest
import yaml

import pipelines.card_figures
import pipelines.inspect
from pipelines import inspect as ins
from pipelines.errors import InputError, SchemaError

SFT_RECIPE = {
    "description": "inspection demo: dedup and length filters over Alpaca rows", "batch_size": 32,
    "source": {"type": "input", "normalize": "sft", "required": ["instruction", "response"]},
    "stages": [
        {"name": "nonempty", "stage": "empty_filter", "column": ["instruction", "response"]},
        {"name": "exact", "stage": "exact_dedup", "column": ["instruction", "input"]},
        {"name": "minhash", "stage": "minhash_dedup", "column": ["instruction", "response"], "threshold": 0.7},
        {"name": "long", "stage": "length_filter", "column": "response", "max_chars": 800},
        {"name": "lengths", "stage": "text_lengths", "columns": ["instruction", "response"]},
    ],
}
PAIR_RECIPE = {"description": "inspection demo: HH-RLHF transcripts as TRL pairs", "batch_size": 32, "source": {"type": "input", "required": ["chosen", "rejected"]}, "stages": [{"name": "pairs", "stage": "pair_columns"}]}
_RUNS: dict[str, Path] = {}


def demo_runs(tmp_path_factory, shared_data: Path) -> dict[str, Path]:
    """Output folders of the two demo runs (made once per session)."""
    if _RUNS:
        return _RUNS
    from pipelines.run import run_recipe

    root = tmp_path_factory.mktemp("inspect_demo")
    rows = json.loads((shared_data / "seeds" / "alpaca_data_random5000.json").read_text())[:50]
    planted = [dict(r) for r in rows[:4]]  # exact copies
    planted += [dict(r, instruction=r["instruction"] + " Be brief.") for r in rows[4:7]]  # near copies
    planted += [dict(rows[7], output="")]  # an empty response
    (root / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + planted))
    for name, recipe in (("sft", SFT_RECIPE), ("pairs", PAIR_RECIPE)):
        (root / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    run_recipe(str(root / "sft.yaml"), input_path=str(root / "sft.jsonl"), out_dir=root / "out-sft", progress=False, workers=0)
    run_recipe(str(root / "pairs.yaml"), input_path=str(shared_data / "preference" / "hh_rlhf_helpful_base_test.jsonl.gz"), out_dir=root / "out-pairs", limit=12, progress=False, workers=0)
    _RUNS.update(sft=root / "out-sft", pairs=root / "out-pairs")
    return _RUNS


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data):
    return demo_runs(tmp_path_factory, shared_data)


def test_doctests():
    for mod in (pipelines.inspect, pipelines.card_figures):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0 and res.attempted > 0, mod.__name__


# -- hand-made rows: one family of columns each -------------------------------------------
def test_constraint_pass_rates_single_and_per_response_verdicts():
    single = pl.DataFrame({"instruction_id_list": [["a", "b"], ["a"]], "follow_instruction_list": [[True, False], [False]]})
    assert ins.constraint_pass_rates(single).rows() == [("a", 2, 1, 0.5), ("b", 1, 0, 0.0)]
    multi = pl.DataFrame({"instruction_id_list": [["a"]], "follow_instruction_list": [[[True], [False], [True]]]})
    assert ins.constraint_pass_rates(multi).rows() == [("a", 3, 2, 0.6667)]
    assert ins.constraint_pass_rates(pl.DataFrame({"x": [1]})).height == 0


def test_judge_ratings_from_per_model_means_and_from_pair_scores():
    means = pl.DataFrame({"rating_honesty__pool_a": [4.0, 2.0], "rating_honesty__pool_b": [1.0, None], "overall_score__pool_a": [8.0, 6.0]})
    assert ins.judge_ratings(means).rows() == [("honesty", "pool_a", 2, 3.0), ("honesty", "pool_b", 1, 1.0), ("overall_score", "pool_a", 2, 7.0)]
    scored = pl.DataFrame({"score_chosen": [9.0, 7.0], "score_rejected": [2.0, 3.0], "chosen_model": ["a", "a"], "rejected_model": ["b", "a"]})
    assert ins.judge_ratings(scored).rows() == [("chosen", "a", 2, 8.0), ("rejected", "a", 1, 3.0), ("rejected", "b", 1, 2.0)]
    # completions and ratings of different lengths (a rejected row's empty ratings) are skipped
    uneven = pl.DataFrame({"completions": [[{"model": "a"}], [{"model": "a"}]], "rating_honesty": [[5.0], []]})
    assert ins.judge_ratings(uneven).rows() == [("honesty", "a", 1, 5.0)]


def test_pairs_side_by_side_from_message_lists():
    df = pl.DataFrame({
        "id": ["p1"],
        "prompt": [[{"role": "user", "content": "Name a fruit."}]],
        "chosen": [[{"role": "assistant", "content": "Apple."}]],
        "rejected": [[{"role": "assistant", "content": "Carrot."}]],
        "score_chosen": [0.9], "score_rejected": [0.1],
    })
    out = ins.pairs(df)
    assert out.select("id", "prompt", "chosen", "rejected").rows() == [("p1", "Name a fruit.", "Apple.", "Carrot.")]
    assert out.get_column("margin").to_list() == [0.8]
    with pytest.raises(SchemaError, match="'chosen'"):
        ins.pairs(pl.DataFrame({"instruction": ["x"]}))


def test_duplicate_clusters_from_reasons_and_min_similar_uuid():
    rows = pl.DataFrame({"id": ["k1", "n1", "n2", "n3"], "instruction": ["keep me", "a", "a.", "b"], "min_similar_uuid": [None, "n1", "n1", None], "min_neighbor_distance": [0.9, 0.01, 0.01, 0.8]})
    rej = pl.DataFrame({"id": ["d1", "d2"], "instruction": ["keep me!", "Keep me"], "reject_reason": ["duplicate_of:k1", "duplicate_of:k1"], "reject_stage": ["exact", "minhash"]})
    out = ins.duplicate_clusters(ins.Inspection(Path("."), "output", rows, rej))
    assert out.select("cluster", "id", "role").rows() == [("k1", "k1", "kept"), ("k1", "d1", "duplicate"), ("k1", "d2", "duplicate"), ("n1", "n1", "neighbour"), ("n1", "n2", "neighbour")]
    assert out.filter(pl.col("id") == "k1").get_column("text").to_list() == ["keep me"]


def test_lineage_of_a_codeclm_row():
    step = {"round": 1, "instruction": "Write a poem.", "action": None, "score_strong": 8.0, "score_target": 7.0, "gap": 1.0, "outcome": "improve"}
    df = pl.DataFrame({"id": ["a", "b"], "lineage": [[], [step, {**step, "round": 2, "instruction": "Write a sonnet.", "action": "add a constraint", "gap": 4.0, "outcome": "accepted"}]]})
    out = ins.lineage(df)
    assert out.get_column("round").to_list() == [1, 2] and out.get_column("outcome").to_list() == ["improve", "accepted"]
    assert ins.lineage(df, "b").height == 2
    with pytest.raises(SchemaError, match="no row with id 'zz'"):
        ins.lineage(df, "zz")
    with pytest.raises(SchemaError, match="'lineage' not in the data"):
        ins.lineage(pl.DataFrame({"id": ["a"]}))


def test_column_families_are_found_and_ids_are_not_scores():
    df = pl.DataFrame({
        "id": [f"r{i}" for i in range(6)], "row_seed": list(range(6)), "chosen_index": [0] * 6,
        "difficulty": ["easy", "hard", "easy", "easy", "hard", None], "notes": [f"n{i}" for i in range(6)],
        "judge_score": [1.0, 2.0, None, 4.0, float("nan"), 6.0], "responses_reward": [[1.0, 2.0]] * 6,
        "embedding": [[0.1, 0.2]] * 6,
    })
    assert ins.categorical_columns(df) == ["difficulty"]
    assert ins.numeric_columns(df) == ["judge_score", "responses_reward"]  # not ids, seeds, indices or embeddings
    summary = {r["column"]: r for r in ins.numeric_summary(df).to_dicts()}
    assert summary["judge_score"]["n"] == 4 and summary["responses_reward"]["n"] == 12  # NaN dropped; lists flattened
    cols = {r["column"]: r for r in ins.column_summary(df).to_dicts()}
    assert cols["difficulty"]["nulls"] == 1 and cols["embedding"]["unique"] is None
    assert "embedding" not in ins.sample_rows(df).columns
    assert ins.value_counts(df, "difficulty").rows()[0] == ("easy", 3, 0.5)


def test_open_path_refuses_a_missing_path(tmp_path):
    with pytest.raises(InputError, match="nothing at"):
        ins.open_path(tmp_path / "nope")


# -- a real run ---------------------------------------------------------------------
def test_open_output_run_folder_and_files_agree(runs):
    out = runs["sft"]
    manifest = json.loads((out / "run" / "manifest.json").read_text())
    full = ins.open_path(out)
    assert full.kind == "output" and full.rows.height == manifest["stages"][-1]["kept"] == 49
    assert ins.funnel(full).select("stage", "rows_in", "kept", "rejected").rows() == [(s["name"], s["rows_in"], s["kept"], s["rejected"]) for s in manifest["stages"]]
    run = ins.open_path(out / "run")
    assert run.kind == "run" and run.rows.height == full.rows.height
    assert sorted(run.rejected.get_column("reject_reason").to_list()) == sorted(full.rejected.get_column("reject_reason").to_list())
    for p in (out / "dataset", out / "data", out / "data" / "train-00000-of-00001.parquet"):
        assert ins.load(p).height == 49, p
    assert ins.rejected(out).height == sum(s["rejected"] for s in manifest["stages"]) == 9


def test_rejections_by_stage_and_reason_with_examples(runs):
    run = ins.open_path(runs["sft"])
    assert ins.rejection_reasons(run).select("stage", "reason", "rows").rows() == [("nonempty", "empty", 1), ("exact", "duplicate_of", 4), ("minhash", "duplicate_of", 3), ("long", "too_long", 1)]
    ex = {(r["stage"], r["reason"]): r for r in ins.rejected_examples(run, n=2).to_dicts()}
    assert ex[("exact", "duplicate_of")]["rows"] == 4 and len(ex[("exact", "duplicate_of")]["examples"]) == 2
    assert all(r.startswith("duplicate_of:") for r in ex[("minhash", "duplicate_of")]["full_reasons"])
    assert any(e.endswith("Be brief.") for e in ex[("minhash", "duplicate_of")]["examples"])


def test_duplicate_clusters_of_a_run_pair_each_copy_with_its_original(runs):
    run = ins.open_path(runs["sft"])
    clusters = ins.duplicate_clusters(run)
    dups = clusters.filter(pl.col("role") == "duplicate")
    assert dups.height == 7
    kept = clusters.filter(pl.col("role") == "kept")
    # every planted copy's cluster starts with the original, whose text it (nearly) repeats
    for row in dups.iter_rows(named=True):
        original = kept.filter(pl.col("cluster") == row["cluster"]).get_column("text").to_list()
        assert original and row["text"].startswith(original[0][:20])


def test_pairs_of_a_pair_run(runs):
    view = ins.pairs(ins.load(runs["pairs"]), n=3)
    assert view.height == 3 and all(view.get_column("chosen").str.len_chars() > 0) and all(view.get_column("prompt").str.len_chars() > 0)
