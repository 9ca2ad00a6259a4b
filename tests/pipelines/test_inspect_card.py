"""Every card carries its plots (PNGs beside README.md), a sample, models with licences,
citations and DataDreamer-style YAML metadata, whatever the recipe's template."""
from __future__ import annotations

import re
import struct

import pyarrow as pa
import pytest
import yaml

from pipelines.card_figures import decorate_card, merge_header
from pipelines.output import (
    describe_model,
    distributions,
    package_versions,
    render_card,
)
from pipelines.pipeline import specs_from_recipe
from pipelines.recipe import list_recipes, load_recipe
from tests.pipelines.test_inspect import demo_runs

PNG = b"\x89PNG\r\n\x1a\n"


def header(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card[4:card.index("\n---\n", 4)])


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    return struct.unpack(">II", data[16:24])


def image_links(card: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data):
    return demo_runs(tmp_path_factory, shared_data)


def test_a_run_card_links_its_plots_beside_readme(runs):
    out = runs["sft"]
    card = (out / "README.md").read_text()
    links = image_links(card)
    assert links[0] == "plot-funnel.png" and "plot-hist_response_length.png" in links
    for link in links:  # relative, beside README.md, real non-empty PNGs
        assert "/" not in link
        w, h = png_size((out / link).read_bytes())
        assert w > 200 and h > 100
    assert sorted(p.name for p in out.glob("plot-*.png")) == sorted(links)
    meta = header(card)
    assert meta["configs"][0]["data_files"][0]["path"] == "data/train-*.parquet"  # the template's keys stay
    assert meta["tags"][:2] == ["aligncraft", "synthetic"] and meta["size_categories"] == ["n<1K"]
    assert meta["source_datasets"] == ["sft.jsonl"] and meta["library_name"] == "aligncraft"
    assert meta["models"] == [] and any("Broder" in c for c in meta["citations"])  # minhash_dedup's method
    sample = card[card.index("## Sample rows"):]
    assert "| instruction | input | response |" in sample and sample.count("\n| ") >= 4
    assert card.index("## Plots") < card.index("## Versions")


def test_every_recipe_card_gets_plots_models_and_metadata(tmp_path):
    # every recipe's own template, rendered as a run renders it (stages built from the
    # recipe, their params and models), then decorated: the figures come from the hook,
    # not from each template. Rows with no tag or score column give the funnel alone (the
    # distribution plots of the same hook are checked on the real run above), which keeps
    # this test to one PNG per recipe.
    table = pa.table({"id": ["a", "b", "c"], "instruction": ["x", "y", "z"]})
    for name in list_recipes():
        recipe = load_recipe(name)
        stages = []
        for i, spec in enumerate(specs_from_recipe(recipe)):
            st = spec.build()
            stages.append({"name": spec.name, "type": spec.type, "params": st.params, "models": st.models(), "needs_llm": st.needs_llm,
                           "rows_in": 3 + (i == 0), "kept": 3, "rejected": int(i == 0), "reasons": {"empty": 1} if i == 0 else {}, "seconds": 0.1, "shards": 1})
        models = sorted({describe_model(m, s["needs_llm"]) for s in stages for m in s["models"].values()})
        context = {"recipe": recipe, "name": name, "description": recipe.get("description", ""), "source": "input seeds.jsonl", "source_rows": 4, "rows": 3,
                   "columns": [(f.name, str(f.type)) for f in table.schema], "stages": stages, "models": models, "versions": package_versions(),
                   "dist": distributions(table), "command": f"aligncraft run {name}", "seconds": 1.0}
        out = tmp_path / name
        out.mkdir()
        card = decorate_card(render_card(recipe, context), out=out, table=table, context=context)
        assert image_links(card) == ["plot-funnel.png"], name
        assert "## Sample rows" in card, name
        assert all((out / link).read_bytes().startswith(PNG) for link in image_links(card)), name
        meta = header(card)
        assert "synthetic" in meta["tags"] and meta["size_categories"] == ["n<1K"], name
        assert [m["name"] for m in meta["models"]] == models, name
        if any("SmolLM2" in m for m in models):
            assert {"name": describe_model("default", True), "license": "apache-2.0"} in meta["models"], name
        assert "## Models and licences" in card and "## Citation" in card, name
    codeclm = header(decorate_card("# x\n", out=tmp_path, table=table, context={"stages": [{"name": "d", "type": "codeclm_decode"}], "rows": 3}))
    assert codeclm["citations"] == [c for c in codeclm["citations"] if "CodecLM" in c] and codeclm["citations"]


def test_merge_header_adds_a_header_and_keeps_template_keys():
    assert header(merge_header("# no header\n", {"tags": ["synthetic"]}))["tags"] == ["synthetic"]
    merged = header(merge_header("---\nlicense: mit\ntags: [dpo]\n---\nbody\n", {"license": "other", "tags": ["synthetic", "dpo"]}))
    assert merged == {"license": "mit", "tags": ["dpo", "synthetic"]}
