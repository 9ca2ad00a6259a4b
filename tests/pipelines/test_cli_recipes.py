"""``aligncraft recipes``: each recipe's line, then where each of its stages lives."""
from __future__ import annotations

import importlib

from pipelines.cli.main import cli
from pipelines.cli.recipes import recipe_stages, stage_location


def test_recipes_show_each_stage_with_its_module(runner):
    res = runner.invoke(cli, ["recipes", "magpie-sft"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("magpie-sft") and "Magpie" in lines[0]
    stages = [ln.split() for ln in lines[1:]]
    assert stages[0] == ["generate", "magpie_instructions", "synth.magpie.instructions:MagpieInstructions"]
    assert ["diversity", "knn_diversity", "filters.dedup.knn_diversity:KnnDiversity"] in stages
    assert all(ln.startswith("    ") for ln in lines[1:])


def test_brief_is_one_line_per_recipe(runner):
    res = runner.invoke(cli, ["recipes", "--brief"])
    assert res.exit_code == 0
    assert not any(ln.startswith(" ") for ln in res.output.splitlines())
    assert any(ln.startswith("magpie-prefs ") for ln in res.output.splitlines())


def test_unknown_recipe_is_a_usage_error(runner):
    res = runner.invoke(cli, ["recipes", "magpie-sfx"])
    assert res.exit_code == 2 and "magpie-sfx" in res.output


def test_every_builtin_stage_location_imports():
    # the listing reads the registry without importing; here each location must be real
    from pipelines.recipe import list_recipes

    for name in list_recipes():
        for step, stage, where in recipe_stages(name):
            module, _, cls = where.partition(":")
            assert hasattr(importlib.import_module(module), cls), (name, step, stage, where)
    assert stage_location("nope") == "(unknown stage)"
