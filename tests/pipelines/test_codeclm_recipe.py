"""The codeclm recipe: its defaults are the paper's (no model), and one end-to-end run
with the embedded SmolLM2 in every role (4 seeds, depth 2, short replies) checked for row
accounting, lineage and the card; then a resume in the middle of the loop."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.accounting import assert_accounting

SEEDS = "seeds/self_instruct_seed_tasks.jsonl"
PAPER_TEMPERATURE = 0.7


def test_recipe_defaults_follow_the_paper(shared_data):
    from pipelines.pipeline import specs_from_recipe, validate
    from pipelines.recipe import load_recipe
    from pipelines.source import Source

    recipe = load_recipe("codeclm")
    stages = {s["name"]: s for s in recipe["stages"]}
    decides = [s for s in recipe["stages"] if s["stage"] == "codeclm_decide"]
    assert [d["round"] for d in decides] == [1, 2, 3, 4]
    assert {(d["depth"], d["theta"]) for d in decides} == {(4, 3.0)}
    assert [s["round"] for s in recipe["stages"] if s["stage"] == "codeclm_improve"] == [2, 3, 4]
    assert stages["metadata"]["size"] == 200 and stages["metadata"]["num_rows"] == 200 and stages["rubrics"]["n"] == 4
    for name in ("encode", "decode", "rubrics", "r2_improve", "r4_improve"):
        assert stages[name]["sampling"]["temperature"] == PAPER_TEMPERATURE
    built = [(spec, spec.build()) for spec in specs_from_recipe(recipe)]
    roles = {role for _, st in built for role in st.models()}
    assert roles == {"model", "strong", "target", "judge"}  # "model": the strong model's other stages
    assert all(st.params["model"] == "default" for _, st in built if st.needs_llm)
    # any seed file with an instruction column, or one mapped to it
    for path, overrides in ((SEEDS, ()), ("seeds/alpaca_eval_805_example_outputs.json", ()), ("seeds/self_instruct_user_oriented_instructions.jsonl", ()), ("seeds/mt_bench_question.jsonl", ()), ("seeds/vicuna_bench_question.jsonl", ()), ("seeds/alpaca_data_random5000.json", ("source.columns={instruction: instruction}",))):
        r = load_recipe("codeclm", overrides)
        source = Source(r["source"], seed=0, input_path=str(shared_data / path), limit=3)
        final = validate([(spec, spec.build()) for spec in specs_from_recipe(r)], source.table().schema)[-1]
        assert {"instruction", "response", "messages", "lineage", "use_case", "skills", "seed_id", "kept_round", "winner", "gap"} <= set(final.names)


def small_recipe(path: Path) -> Path:
    """Depth 2, 2 rubrics, short replies. Greedy, the 135M judge scores every pair "10 10"
    (measured), so nothing would pass theta: here it samples (seeded, temperature 1), which
    with the paper's theta = 3 decides some rows in round 1 and sends others to round 2.
    The target samples too, so its answers differ from the strong model's greedy ones."""
    from pipelines.recipe import RECIPES_DIR

    r = yaml.safe_load((RECIPES_DIR / "codeclm.yaml").read_text())
    r["stages"] = [s for s in r["stages"] if not (s["name"][0] == "r" and s["name"][1].isdigit() and int(s["name"][1]) > 2)]
    tokens = {"encode": 32, "decode": 40, "rubrics": 80}
    for s in r["stages"]:
        if s["name"] in tokens:
            s["sampling"] = {"temperature": 0.7, "max_tokens": tokens[s["name"]]}
        if s["stage"] == "codeclm_rubrics":
            s["n"] = 2
        if s["stage"] == "codeclm_respond":
            s["sampling"] = {"temperature": 0.0, "max_tokens": 24} if s["role"] == "strong" else {"temperature": 1.0, "max_tokens": 12}
        if s["stage"] == "codeclm_improve":
            s["sampling"] = {"temperature": 0.7, "max_tokens": 40}
        if s["stage"] == "codeclm_judge":
            s["sampling"] = {"temperature": 1.0, "max_tokens": 8}
        if s["stage"] == "codeclm_decide":
            s.update(depth=2)
        if s["stage"] == "codeclm_metadata":
            s["num_rows"] = 6  # more slots than the 4 seeds: the stage makes rows
    r["name"] = "codeclm"  # the codeclm card
    out = path / "codeclm-small.yaml"
    out.write_text(yaml.safe_dump(r, sort_keys=False))
    return out


def run(recipe: Path, shared_data: Path, out: Path):
    from pipelines.run import run_recipe

    # debug: one process, so the engine stays warm for the resume rerun
    return run_recipe(str(recipe), input_path=str(shared_data / SEEDS), out_dir=out, limit=4, progress=False, workers=0, debug=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("codeclm")
    recipe = small_recipe(d)
    result = run(recipe, shared_data, d / "ref")
    return recipe, result, d


def final_table(out: Path):
    return pq.read_table(out / "data" / "train-00000-of-00001.parquet")


@pytest.mark.model
@pytest.mark.slow
def test_end_to_end_accounts_for_every_row_with_lineage(reference):
    _, result, _ = reference
    manifest = assert_accounting(result.out_dir)
    stages = {s["name"]: s for s in manifest["stages"]}
    assert stages["encode"]["rows_in"] == 4
    assert stages["metadata"]["kept"] == 6 and stages["metadata"]["rows_in"] == stages["encode"]["kept"]
    known = {"parse_error", "too_few_instructions", "prompt_too_long", "empty_response", "no_gap_after_depth", "no_score", "duplicate_metadata", "metadata_unused"}
    for s in manifest["stages"]:
        assert set(s["reasons"]) <= known, (s["name"], s["reasons"])
    for name in ("r1_strong", "r1_target", "r1_judge", "r2_strong", "r2_target", "r2_judge"):
        assert stages[name]["rejected"] == 0  # only decide (and improve) resolve a round
    entered = stages["r1_strong"]["rows_in"]
    assert entered >= 1, f"no instruction reached the loop: {manifest['stages']}"
    final = final_table(result.out_dir).to_pylist()
    rejected = [r for f in sorted((result.out_dir / "rejected").glob("*decide.parquet")) for r in pq.read_table(f).to_pylist()]
    improve_rej = [r for f in sorted((result.out_dir / "rejected").glob("*improve.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(final) + len(rejected) + len(improve_rej) == entered
    for row in final:
        assert row["kept_round"] in (1, 2) and row["winner"] in ("strong", "target")
        assert len(row["lineage"]) == row["kept_round"] and row["lineage"][-1]["outcome"] == f"kept:{row['winner']}"
        assert row["response"] == row[f"response_{row['winner']}"] and row["messages"][-1] == {"role": "assistant", "content": row["response"]}
        assert row["lineage"][-1]["instruction"] == row["instruction"] and row["use_case"] and row["skills"] and row["seed_id"]
        assert (row["gap"] > 0) == (row["winner"] == "strong")
    for row in rejected:
        assert len(row["lineage"]) == row["codeclm_round"] and row["lineage"][-1]["outcome"] == row["reject_reason"]
    # the seeded run sends some instruction through a rewrite (if a prompt change makes this
    # fail, the loop is not exercised end to end any more: re-pick the seeds or sizes)
    assert any(len(r["lineage"]) == 2 for r in final + rejected), [r["lineage"] for r in final + rejected]
    card = (result.out_dir / "README.md").read_text()
    for heading in ("## Models by role", "## Acceptance", "## Gap distribution", "## Metadata distribution", "## Rounds and rejections"):
        assert heading in card
    assert f"gave 6 instruction slots (an equal share per metadata); {entered} basic instructions entered the loop; **{len(final)} were kept**" in card


@pytest.mark.model
@pytest.mark.slow
def test_resume_mid_loop_redoes_only_the_unfinished_stages(reference, shared_data):
    recipe, result, d = reference
    out = d / "resumed"
    shutil.copytree(result.out_dir, out)  # copy2: modification times are kept
    stages_dir = out / "run" / "stages"
    # what a kill in round 2 leaves: round 1 and round 2's answers finished, its judge not
    # (redoing the judge, a model stage, keeps the test short), no output yet
    later = [p for p in stages_dir.iterdir() if p.name.split("-", 1)[1].startswith(("r2_judge", "r2_decide", "shape"))]
    assert len(later) == 3
    for p in later:
        shutil.rmtree(p)
    shutil.rmtree(out / "data")
    done = {p: p.stat().st_mtime_ns for p in stages_dir.rglob("*.parquet")}
    run(recipe, shared_data, out)
    assert {p: p.stat().st_mtime_ns for p in done} == done  # finished stages: not redone
    # same fingerprints as the reference (fails if the code changed between the two runs)
    assert {p.name for p in stages_dir.iterdir()} == {p.name for p in (result.out_dir / "run" / "stages").iterdir()}
    assert final_table(out).equals(final_table(result.out_dir))
    assert_accounting(out)
