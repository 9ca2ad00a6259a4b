"""A pipeline is validated before any model loads: unknown stage, bad parameter, missing or
mistyped column, bad --set, each one clear error naming the stage and column."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from pipelines.errors import ConfigError, SchemaError
from pipelines.recipe import apply_overrides, list_recipes, load_recipe
from pipelines.registry import stage_class
from pipelines.run import run_recipe


def write_recipe(tmp_path, stages, source=None, **top):
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump({"description": "test", "source": source or {"type": "input"}, "stages": stages, **top}))
    return str(p)


@pytest.fixture()
def prompts(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(json.dumps({"instruction": f"q{i}", "n": i}) for i in range(5)))
    return str(p)


def test_unknown_stage_suggests_the_close_name():
    with pytest.raises(ConfigError, match="unknown stage 'lenght_filter'") as e:
        stage_class("lenght_filter")
    assert "length_filter" in e.value.hint


def test_bad_parameter_names_the_stage(tmp_path, prompts):
    r = write_recipe(tmp_path, [{"name": "short", "stage": "length_filter", "column": "instruction", "min_chars": 9, "max_chars": 2}])
    with pytest.raises(ConfigError, match="stage 'short'.*min_chars"):
        run_recipe(r, input_path=prompts, out_dir=tmp_path / "o", progress=False)
    r = write_recipe(tmp_path, [{"name": "short", "stage": "length_filter", "colunm": "instruction"}])
    with pytest.raises(ConfigError, match="stage 'short'.*colunm"):
        run_recipe(r, input_path=prompts, out_dir=tmp_path / "o", progress=False)


def test_missing_column_names_stage_and_column(tmp_path, prompts):
    r = write_recipe(tmp_path, [{"name": "clean", "stage": "empty_filter", "column": "instruction"}, {"name": "lengths", "stage": "text_lengths", "columns": ["instruction", "response"]}])
    with pytest.raises(SchemaError) as e:
        run_recipe(r, input_path=prompts, out_dir=tmp_path / "o", progress=False)
    assert e.value.stage == "lengths" and e.value.column == "response"
    assert "stage 'lengths'" in e.value.message
    assert not (tmp_path / "o" / "run").exists()  # nothing written before validation passes


def test_mistyped_column_is_a_schema_error(tmp_path, prompts):
    r = write_recipe(tmp_path, [{"name": "clean", "stage": "empty_filter", "column": "n"}])
    with pytest.raises(SchemaError, match="column 'n' has type int64, expected string"):
        run_recipe(r, input_path=prompts, out_dir=tmp_path / "o", progress=False)


def test_llm_pipeline_fails_validation_before_loading_any_model(tmp_path, prompts):
    """The respond stage needs `instruction` (or an alias: prompt, question, turns, ...); the
    file has only `body`: fail fast, no vllm import."""
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"body": "hi"}) + "\n")
    code = (
        "import sys\nfrom pipelines.run import run_recipe\nfrom pipelines.errors import SchemaError\n"
        f"try:\n    run_recipe('sft-answer', input_path={str(p)!r}, out_dir={str(tmp_path / 'o')!r}, progress=False)\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
        "print('heavy', sorted(m for m in ('vllm', 'torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "InputError" in out and "instruction" in out
    assert "heavy []" in out


def test_overrides_address_stages_llm_and_source():
    r = {"name": "x", "stages": [{"name": "gen", "stage": "respond"}], "source": {"type": "generate", "num_rows": 3}}
    r2 = apply_overrides(r, ["gen.sampling={max_tokens: 8}", "llm.model=/m", "source.num_rows=10", "batch_size=7"])
    assert r2["stages"][0]["sampling"] == {"max_tokens": 8}
    assert r2["llm"]["model"] == "/m" and r2["source"]["num_rows"] == 10 and r2["batch_size"] == 7
    with pytest.raises(ConfigError, match="no stage named 'nope'"):
        apply_overrides(r, ["nope.x=1"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(r, ["gen.x"])


def test_a_glob_override_reaches_every_matching_stage():
    r = {"name": "x", "stages": [{"name": n, "stage": "respond"} for n in ("r1_judge", "r1_decide", "r2_judge")]}
    r2 = apply_overrides(r, ["r*_judge.sampling={temperature: 0.0}"])
    assert [s.get("sampling") for s in r2["stages"]] == [{"temperature": 0.0}, None, {"temperature": 0.0}]
    r2["stages"][0]["sampling"]["temperature"] = 1  # each stage got its own copy
    assert r2["stages"][2]["sampling"] == {"temperature": 0.0}
    with pytest.raises(ConfigError, match="no stage name matches 'q\\*'"):
        apply_overrides(r, ["q*.x=1"])


def test_an_override_inside_a_yaml_anchor_changes_one_stage(tmp_path):
    # bug: stages that share an anchor (&answer / *answer) shared one dict, so setting one
    # stage's sampling.max_tokens changed all of them
    p = tmp_path / "r.yaml"
    p.write_text("stages:\n  - {name: a, stage: respond, sampling: &s {max_tokens: 4}}\n  - {name: b, stage: respond, sampling: *s}\n")
    r = load_recipe(str(p), ["a.sampling.max_tokens=8"])
    assert [st["sampling"]["max_tokens"] for st in r["stages"]] == [8, 4]


def test_every_builtin_recipe_loads_and_builds(tmp_path):
    from pipelines.pipeline import specs_from_recipe

    recipes = list_recipes()
    assert {"magpie-sft", "magpie-prefs", "sft-answer"} <= set(recipes)
    for name, desc in recipes.items():
        assert desc, f"recipe {name} has no description"
        for spec in specs_from_recipe(load_recipe(name)):
            spec.build()  # parameters valid, no model loaded


# -- issue 10 ---------------------------------------------------------------------------
@pytest.mark.parametrize("model, message", [
    ("/no/such/model", "stage 'answer' \\(respond\\): model path /no/such/model does not exist"),
    ("smollm-typo", "stage 'answer' \\(respond\\): unknown model 'smollm-typo'"),
    ("nobody/not-cached-model", "stage 'answer' \\(respond\\): model 'nobody/not-cached-model' is not in the local Hugging Face cache"),
])
def test_model_is_resolved_at_validation_naming_the_stage(tmp_path, prompts, model, message):
    # bug: model paths and hub ids were resolved at load(), after earlier stages had run
    r = write_recipe(tmp_path, [{"name": "clean", "stage": "empty_filter", "column": "instruction"}, {"name": "answer", "stage": "respond", "model": model}])
    with pytest.raises(ConfigError, match=message):
        run_recipe(r, input_path=prompts, out_dir=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()  # failed before the first stage ran


def test_openai_backend_checks_its_key_variable_not_the_model(tmp_path, prompts, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    r = write_recipe(tmp_path, [{"name": "answer", "stage": "respond", "backend": "openai", "model": "served-name", "engine": {"api_key_env": "NO_SUCH_KEY_VAR"}}])
    with pytest.raises(ConfigError, match="stage 'answer'.*NO_SUCH_KEY_VAR, which is not set"):
        run_recipe(r, input_path=prompts, out_dir=tmp_path / "o", progress=False)


def test_mistyped_input_column_names_file_and_row(tmp_path):
    # bug: a wrongly typed input column was reported by stage and column, not file and row
    p = tmp_path / "typed.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [{"q": None}, {"q": 5}, {"q": 6}]) + "\n")
    r = write_recipe(tmp_path, [{"name": "clean", "stage": "empty_filter", "column": "instruction"}], source={"type": "input", "columns": {"instruction": "q"}})
    with pytest.raises(SchemaError, match=r"stage 'clean': column 'instruction' has type int64, expected string \(in .*typed.jsonl, row 2, column 'q': 5\)"):
        run_recipe(r, input_path=str(p), out_dir=tmp_path / "o", progress=False)


def test_null_instruction_is_an_input_error_naming_the_row(tmp_path):
    # bug: a null instruction reached the model as the literal prompt "None". A null is a
    # defect of the input file, not a judgement of a stage: fail before any model loads,
    # naming the row, unless a filter before the stage (empty_filter) rejects such rows.
    from pipelines.errors import InputError

    p = tmp_path / "nulls.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [{"instruction": "a"}, {"instruction": None}, {"instruction": "c"}]) + "\n")
    r = write_recipe(tmp_path, [{"name": "answer", "stage": "respond", "model": "/no/such/model"}])
    with pytest.raises(InputError, match="nulls.jsonl, row 2, column 'instruction': null value where stage 'answer' needs text") as e:
        run_recipe(r, input_path=str(p), out_dir=tmp_path / "o", progress=False)
    assert "empty_filter" in e.value.hint
    r = write_recipe(tmp_path, [{"name": "clean", "stage": "empty_filter", "column": "instruction"}, {"name": "lengths", "stage": "text_lengths", "columns": ["instruction"]}])
    res = run_recipe(r, input_path=str(p), out_dir=tmp_path / "o", progress=False, workers=0)
    assert res.rows == 2 and res.stages[0]["reasons"] == {"empty": 1}
