"""The ultrafeedback-prefs recipe end to end with SmolLM2 in every role (two pool stages,
judge, critique): 4 MT-Bench prompts (first turn of `turns`), short completions and
engine-constrained judge replies. One module-scoped run; the tests read its outputs."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.model, pytest.mark.slow]

SMALL = (
    "pool_a.sampling={max_tokens: 12}", "pool_b.sampling={max_tokens: 12}",
    "rate.sampling={max_tokens: 150}", "rate.rationale_chars=12", "rate.max_retries=1",
    "critique.sampling={max_tokens: 24}", "critique.feedback_chars=30", "critique.max_retries=1",
)


@pytest.fixture(scope="module")
def run(shared_data, tmp_path_factory):
    from pipelines.run import run_recipe

    out = tmp_path_factory.mktemp("uf") / "out"
    return run_recipe("ultrafeedback-prefs", input_path=str(shared_data / "seeds" / "mt_bench_question.jsonl"), out_dir=out, limit=4, overrides=SMALL, progress=False, workers=0)


def test_rows_are_accounted_for(run):
    from tests.accounting import assert_accounting

    manifest = assert_accounting(run.out_dir)
    names = [s["name"] for s in manifest["stages"]]
    assert names == ["prompt", "pool_a", "pool_b", "rate", "critique", "stats", "pairs"]
    assert manifest["source"]["rows"] == 4
    allowed = {"empty_prompt", "empty_completion", "prompt_too_long", "parse_error", "too_few_responses", "tie"}
    for s in manifest["stages"]:
        assert set(s["reasons"]) <= allowed, s


def test_pairs_load_with_datasets_in_trl_format(run):
    import datasets

    ds = datasets.load_from_disk(str(run.dataset_dir))
    assert len(ds) == run.rows >= 1, [s["reasons"] for s in run.stages]
    assert {"prompt", "chosen", "rejected", "score_chosen", "score_rejected", "messages", "prompt_id", "completions", "rating_honesty", "overall_score", "critique"} <= set(ds.column_names)
    for row in ds:
        # TRL's conversational preference format (trl/data_utils.py): message lists, prompt ends on the user turn
        assert row["prompt"] == [{"role": "user", "content": row["instruction"]}] and row["instruction"]
        assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
        assert len(row["completions"]) == 4
        assert sorted(c["model"] for c in row["completions"]) == ["pool_a", "pool_a", "pool_b", "pool_b"]
        assert all(c["principle"] in ("helpfulness", "honesty", "truthfulness", "verbalized_calibration") for c in row["completions"])
        assert row["score_chosen"] == max(row["overall_score"]) >= row["score_rejected"]  # h4: the best overall score
        assert row["chosen_index"] != row["rejected_index"]
        assert all(len(row[f"rating_{a}"]) == 4 for a in ("instruction_following", "honesty", "truthfulness", "helpfulness"))


def test_first_mt_bench_turn_is_the_prompt(run, shared_data):
    import json

    import datasets

    firsts = {json.loads(line)["turns"][0] for line in (shared_data / "seeds" / "mt_bench_question.jsonl").read_text().splitlines()[:4]}
    ds = datasets.load_from_disk(str(run.dataset_dir))
    assert set(ds["instruction"]) <= firsts


def test_card_shows_judge_reliability_and_ratings_per_model(run):
    card = run.card.read_text()
    assert "## Judge reliability" in card and "Prompts rejected for unparseable judge replies" in card
    assert "Position consistency" in card
    assert "| score | pool_a | pool_b |" in card and "| rating_helpfulness |" in card
    assert "`prompt`, `chosen` and `rejected` are message lists" in card
