"""The act-prefs recipes: both validate against their inputs (no model), and act-prefs
runs end to end with the embedded SmolLM2 (about 2 minutes on 2 CPU cores): 8 IFEval
prompts -> 4 samples each -> constraint verification -> ACT pairs."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize(("recipe", "overrides"), [("act-prefs", ()), ("act-prefs-extract", ("source.columns={instruction: prompt}",))])
def test_recipes_validate_on_ifeval_input(shared_data, recipe, overrides):
    from pipelines.pipeline import specs_from_recipe, validate
    from pipelines.recipe import load_recipe
    from pipelines.source import Source

    r = load_recipe(recipe, overrides)
    assert r["description"]
    source = Source(r["source"], seed=0, input_path=str(shared_data / "ifeval" / "input_data.jsonl"), limit=4)
    built = [(spec, spec.build()) for spec in specs_from_recipe(r)]
    final = validate(built, source.table().schema)[-1]
    assert {"prompt", "chosen", "rejected", "csr_chosen", "csr_rejected"} <= set(final.names)
    assert [b.needs_llm for _, b in built][-2:] == [False, False]  # verify and pairs run on CPU workers


@pytest.mark.model
def test_act_prefs_recipe_on_ifeval_prompts(shared_data, tmp_path):
    import json

    import datasets

    from pipelines.run import run_recipe

    # The first 8 IFEval prompts with 3+ constraints: with 4 short samples from a 135M
    # model, one-constraint prompts mostly tie at CSR 0 and give no pair.
    rows = [json.loads(line) for line in (shared_data / "ifeval" / "input_data.jsonl").read_text().splitlines()]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows if len(r["instruction_id_list"]) >= 3))
    result = run_recipe(
        "act-prefs",
        input_path=str(prompts),
        out_dir=tmp_path / "out",
        limit=8,
        overrides=("sample.sampling={max_tokens: 64}",),
        progress=False,
        workers=0,
    )
    stages = {s["name"]: s for s in result.stages}
    assert list(stages) == ["sample", "verify", "pairs"]
    # rows accounted for: every stage's input is the previous stage's kept rows
    assert stages["sample"]["rows_in"] == 8
    for prev, cur in (("sample", "verify"), ("verify", "pairs")):
        assert stages[cur]["rows_in"] == stages[prev]["kept"]
    for s in stages.values():
        assert s["rows_in"] == s["kept"] + s["rejected"]
        assert sum(s["reasons"].values()) == s["rejected"]
    assert stages["verify"]["rejected"] == 0  # IFEval's own constraints are all valid
    assert set(stages["pairs"]["reasons"]) <= {"tie", "low_margin", "too_few_responses"}

    ds = datasets.load_from_disk(str(result.dataset_dir))
    assert len(ds) == result.rows == stages["pairs"]["kept"]
    assert len(ds) >= 1, f"no pair out of 8 prompts: {stages['pairs']['reasons']}"
    assert {"prompt", "chosen", "rejected", "csr_chosen", "csr_rejected", "follow_instruction_list", "instruction_id_list"} <= set(ds.column_names)
    for row in ds:
        assert row["prompt"][0]["role"] == "user" and row["prompt"][0]["content"]
        assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
        assert row["csr_chosen"] > row["csr_rejected"]
        csrs = [c for r, c in zip(row["responses"], row["constraint_satisfaction"]) if r.strip()]
        assert (row["csr_chosen"], row["csr_rejected"]) == (max(csrs), min(csrs))
        assert len(row["responses"]) == 4
