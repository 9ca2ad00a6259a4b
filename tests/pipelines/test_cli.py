from __future__ import annotations

import json
import subprocess
import sys

import datasets
import pytest
import yaml

from pipelines.cli.main import cli
from tests.accounting import assert_accounting


@pytest.fixture()
def recipe_and_data(tmp_path):
    data = tmp_path / "in.jsonl"
    rows = [{"instruction": f"question {i % 7}", "output": "answer " * (i % 3)} for i in range(30)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "description": "cli test", "batch_size": 8,
        "source": {"type": "input", "columns": {"response": "output"}},
        "stages": [
            {"name": "clean", "stage": "empty_filter", "column": ["instruction", "response"]},
            {"name": "dedup", "stage": "exact_dedup", "column": "instruction"},
            {"name": "lengths", "stage": "text_lengths", "columns": ["instruction", "response"]},
        ],
    }))
    return recipe, data


def test_help_teaches_and_loads_no_model_library():
    out = subprocess.run([sys.executable, "-c", "import sys\nfrom pipelines.cli.main import cli\ntry:\n    cli(['--help'])\nexcept SystemExit:\n    pass\nprint('HEAVY', [m for m in ('vllm','torch','transformers','faiss','sentence_transformers','datasets') if m in sys.modules])"], capture_output=True, text=True, timeout=60).stdout
    assert "aligncraft run magpie-sft" in out and "recipes" in out and "inspect" in out
    assert "HEAVY []" in out


def test_recipes_lists_one_line_each(runner):
    res = runner.invoke(cli, ["recipes"])
    assert res.exit_code == 0
    line = next(ln for ln in res.output.splitlines() if ln.startswith("magpie-sft"))
    assert "Magpie" in line


def test_run_writes_dataset_card_and_accounts_rows(runner, recipe_and_data, tmp_path):
    recipe, data = recipe_and_data
    out = tmp_path / "out"
    res = runner.invoke(cli, ["run", str(recipe), "--input", str(data), "--out", str(out), "--no-progress", "--workers", "0"])
    assert res.exit_code == 0, res.output
    ds = datasets.load_from_disk(str(out / "dataset"))
    assert ds.num_rows == 7  # 7 distinct questions, each with some non-empty answer
    assert set(ds.column_names) >= {"id", "instruction", "response", "instruction_length"}
    card = (out / "README.md").read_text()
    for s in ("clean", "dedup", "lengths", "duplicate_of", "empty"):
        assert s in card
    assert "aligncraft run" in card  # the command that reproduces it
    assert_accounting(out)
    res = runner.invoke(cli, ["inspect", str(out)])
    assert res.exit_code == 0 and "7 rows" in res.output and "instruction_length" in res.output


def test_user_errors_are_one_line_without_traceback(recipe_and_data, tmp_path):
    recipe, data = recipe_and_data
    def run(*args):
        return subprocess.run([sys.executable, "-m", "pipelines.cli.main", *args], capture_output=True, text=True, timeout=120)
    r = run("run", "no-such-recipe")
    assert r.returncode == 2 and r.stderr.startswith("Error: unknown recipe") and "Traceback" not in r.stderr
    r = run("run", str(recipe), "--input", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "missing.jsonl" in r.stderr and "Traceback" not in r.stderr
    r = run("run", str(recipe), "--input", str(data), "--set", "nostage.x=1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "no stage named 'nostage'" in r.stderr
    r = run("run", str(recipe), "--input", str(data), "--set", "novalue", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "key=value" in r.stderr


def test_bad_input_leaves_earlier_outputs_intact(runner, recipe_and_data, tmp_path):
    recipe, data = recipe_and_data
    out = tmp_path / "out"
    assert runner.invoke(cli, ["run", str(recipe), "--input", str(data), "--out", str(out), "--no-progress", "--workers", "0"]).exit_code == 0
    before = (out / "data" / "train-00000-of-00001.parquet").read_bytes()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x", "output": "y"}\n{broken\n')
    res = runner.invoke(cli, ["run", str(recipe), "--input", str(bad), "--out", str(out), "--no-progress"])
    assert res.exit_code == 2 and "bad.jsonl, line 2" in res.output
    assert (out / "data" / "train-00000-of-00001.parquet").read_bytes() == before


def test_push_to_hub_goes_through_huggingface_hub(recipe_and_data, tmp_path, monkeypatch):
    """The Hub is unreachable here: everything up to the upload call runs for real."""
    import huggingface_hub

    from pipelines.run import run_recipe

    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw)) or "https://hub/commit")
    recipe, data = recipe_and_data
    out = tmp_path / "out"
    run_recipe(str(recipe), input_path=str(data), out_dir=out, progress=False, workers=0, push_to_hub="me/my-data")
    assert calls[0][0] == "create" and calls[0][1] == "me/my-data" and calls[0][2]["repo_type"] == "dataset"
    assert calls[1][1]["folder_path"] == str(out) and "data/*" in calls[1][1]["allow_patterns"]
