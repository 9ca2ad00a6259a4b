"""The output folder: one run at a time (the lock survives --fresh), and the card's
Reproduce command comes from the run's arguments."""
from __future__ import annotations

import json

import pytest
import yaml

from pipelines.errors import ConfigError
from pipelines.run import LOCK_NAME, run_recipe

RECIPE = {
    "description": "run dir test", "batch_size": 4,
    "source": {"type": "input"},
    "stages": [{"name": "clean", "stage": "empty_filter", "column": "instruction"}, {"name": "dedup", "stage": "exact_dedup", "column": "instruction"}],
}


@pytest.fixture()
def recipe_and_data(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps({"instruction": f"q{i % 5}"}) for i in range(12)) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    return str(recipe), str(data)


def test_fresh_does_not_remove_the_lock_of_a_running_run(recipe_and_data, tmp_path):
    # bug: --fresh deleted the run directory, lock included, before taking the lock, so a
    # second process could write into the stage directories of one still running
    from filelock import FileLock

    recipe, data = recipe_and_data
    out = tmp_path / "out"
    run_recipe(recipe, input_path=data, out_dir=out, progress=False, workers=0)
    finished = sorted(p.relative_to(out) for p in (out / "run").rglob("*"))
    assert not list((out / "run").rglob("*.lock"))  # the lock lives beside run/, not in it
    running = FileLock(str(out / LOCK_NAME))  # another run holds the folder
    running.acquire(timeout=0)
    try:
        with pytest.raises(ConfigError, match="another aligncraft run is using"):
            run_recipe(recipe, input_path=data, out_dir=out, progress=False, workers=0, fresh=True)
        assert sorted(p.relative_to(out) for p in (out / "run").rglob("*")) == finished  # nothing removed
    finally:
        running.release()
    res = run_recipe(recipe, input_path=data, out_dir=out, progress=False, workers=0, fresh=True)
    assert res.rows == 5


def test_card_reproduce_command_comes_from_the_run_not_argv(recipe_and_data, tmp_path):
    # bug: through the Python API the card showed the calling program's argv ("aligncraft -q
    # -x tests" under pytest) as the command that reproduces the dataset
    recipe, data = recipe_and_data
    out = tmp_path / "out"
    run_recipe(recipe, input_path=data, out_dir=out, progress=False, workers=0, overrides=("dedup.normalize=false",), limit=10)
    card = (out / "README.md").read_text()
    expected = f"aligncraft run {recipe} --input {data} --set dedup.normalize=false --out {out} --limit 10"
    block = card.split("## Reproduce", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    assert block == expected
    assert yaml.safe_load((out / "run" / "config.yaml").read_text())["command"] == expected


def test_cards_link_no_invented_repository():
    # bug: the card linked a repository URL that does not exist; link nothing instead
    from pipelines.output import CARDS_DIR

    linked = [p.name for p in sorted(CARDS_DIR.glob("*.md")) if "github.com/aligncraft" in p.read_text()]
    assert linked == []
