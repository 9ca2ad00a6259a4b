from __future__ import annotations

import json

import pytest
import yaml

from pipelines.errors import StageError
from pipelines.run import run_recipe


def setup_run(tmp_path, stage, batch_size=4):
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps({"instruction": w}) for w in ["a", "b", "c", "d", "e", "boom", "f"]) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"description": "t", "batch_size": batch_size, "stages": [{"name": "clean", "stage": "empty_filter", "column": "instruction"}, {"name": "explode", "stage": stage}]}))
    return str(recipe), str(data)


@pytest.mark.parametrize("workers", [0, 1])
def test_worker_exception_names_stage_and_batch_and_keeps_finished_shards(tmp_path, workers):
    recipe, data = setup_run(tmp_path, "tests.pipelines.failing_stage:Boom")
    with pytest.raises(StageError) as e:
        run_recipe(recipe, input_path=data, out_dir=tmp_path / "o", progress=False, workers=workers)
    assert e.value.stage == "explode" and e.value.shard == 1
    assert "ZeroDivisionError" in e.value.message
    assert "ZeroDivisionError" in (e.value.traceback or "")
    done = sorted(p.name for p in (tmp_path / "o" / "run" / "stages").glob("01-explode-*/stats/*.json"))
    assert done == ["00000.json"]  # batch 0 finished and is kept for the resume


def test_a_stage_that_loses_rows_is_stopped(tmp_path):
    recipe, data = setup_run(tmp_path, "tests.pipelines.failing_stage:LosesRows")
    with pytest.raises(StageError, match="row accounting violated: 4 rows in, 3 kept \\+ 0 rejected"):
        run_recipe(recipe, input_path=data, out_dir=tmp_path / "o", progress=False, workers=0)
