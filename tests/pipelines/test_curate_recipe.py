"""The `curate` recipe end to end on 60 Alpaca rows: dedup, deita scores, selection, card."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from pipelines.recipe import load_recipe

EXPECTED_REASONS = {"empty", "duplicate_of", "parse_error", "prompt_too_long", "too_similar", "over_budget"}
STAGES = ("nonempty", "exact", "minhash", "embed", "near_dup", "score", "select", "shape")


def test_recipe_stage_names_and_overrides():
    recipe = load_recipe("curate", ("select.budget=20", "score.on_error=fallback"))
    assert tuple(s["name"] for s in recipe["stages"]) == STAGES
    by_name = {s["name"]: s for s in recipe["stages"]}
    assert by_name["select"]["budget"] == 20 and by_name["score"]["on_error"] == "fallback"
    assert recipe["source"]["normalize"] == "sft"  # Alpaca output, prompt/completion, messages all accepted
    assert recipe["description"]


@pytest.mark.model
def test_curate_alpaca_60_rows(shared_data, tmp_path):
    from pipelines.run import run_recipe
    from synth.backends.llm import release_all

    try:
        res = run_recipe("curate", input_path=str(shared_data / "seeds" / "alpaca_data_random5000.json"), out_dir=tmp_path,
                         limit=60, progress=False, workers=0, overrides=("select.budget=20",))
    finally:
        release_all()
    assert 0 < res.rows <= 20
    stages = {s["name"]: s for s in res.stages}
    assert tuple(stages) == STAGES
    assert stages["nonempty"]["rows_in"] == 60
    for s in res.stages:
        assert s["rows_in"] == s["kept"] + s["rejected"], s["name"]
    assert stages["select"]["kept"] == res.rows
    # embedded once, by the per-shard embed stage; near_dup and select reuse the column
    # (issue 11: curate embedded the corpus twice, and a resume embedded it again)
    embedded = pq.read_table(next((tmp_path / "run" / "stages").glob("*-embed-*")) / "kept" / "00000.parquet")
    assert embedded.schema.field("embedding").type.value_type.bit_width == 32
    assert "embedding" not in pq.read_table(tmp_path / "data" / "train-00000-of-00001.parquet").column_names
    # every rejected row has a reason of a known kind, and the selection filled its budget
    reasons: set[str] = set()
    for f in (tmp_path / "rejected").glob("*.parquet"):
        reasons |= {r.split(":")[0] for r in pq.read_table(f).column("reject_reason").to_pylist()}
    assert reasons <= EXPECTED_REASONS
    assert stages["select"]["reasons"].get("over_budget", 0) + stages["select"]["reasons"].get("too_similar", 0) == stages["select"]["rejected"]
    # the kept rows carry the scores, in deita's range
    table = pq.read_table(tmp_path / "data" / "train-00000-of-00001.parquet")
    scores = table.column("deita_score").to_pylist()
    assert all(1.0 <= c <= 6.0 for c in table.column("complexity").to_pylist())
    # selection is score-first: the best-scored row of the pool is always taken
    not_selected = pq.read_table(next((tmp_path / "rejected").glob("*-select.parquet"))).column("deita_score").to_pylist()
    assert max(scores) >= max(not_selected)
    card = (tmp_path / "README.md").read_text()
    for name in STAGES:
        assert f"| {name} (`" in card
    assert "### deita_score" in card and "What each stage removed" in card
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["rows"] == res.rows
