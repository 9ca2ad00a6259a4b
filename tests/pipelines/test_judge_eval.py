"""``aligncraft judge-eval``: option checking (no model), the reference figures, and a run
with SmolLM2 on a tiny sample (2 pairs of LLMBar Natural and of PandaLM, one aspect)."""
from __future__ import annotations

import json

import pytest


def test_bad_set_is_a_usage_error(runner):
    from pipelines.cli.main import cli

    res = runner.invoke(cli, ["judge-eval", "--judge", "default", "--sets", "llmbar_natural,imdb"])
    assert res.exit_code == 2 and "unknown set(s) imdb" in res.output


def test_reference_figures_match_the_published_ones(shared_data):
    from synth.judge.agreement import reference_figures

    ref = reference_figures(shared_data / "judge_agreement")
    assert ref["llmbar_natural"]["correct_average"] == pytest.approx(0.935)
    assert ref["llmbar_neighbor"]["correct_average"] == pytest.approx(0.6418, abs=1e-4)
    assert ref["mt_bench"]["correct_average"] == pytest.approx(0.81) and ref["mt_bench"]["consistency"] == pytest.approx(0.87)
    assert ref["pandalm"]["correct_average"] == pytest.approx(697 / 999)  # gpt-3.5-turbo vs the human majority


def test_sets_load_with_labels(shared_data):
    from synth.judge.agreement import SETS, load_set

    sizes = {name: len(load_set(shared_data / "judge_agreement", name)) for name in SETS}
    assert sizes == {"llmbar_natural": 100, "llmbar_neighbor": 134, "llmbar_gptinst": 92, "llmbar_gptout": 47, "llmbar_manual": 46, "mt_bench": 200, "pandalm": 999}
    panda = load_set(shared_data / "judge_agreement", "pandalm")
    assert [sum(p.label == k for p in panda) for k in (0, 1, 2)] == [105, 422, 472]  # the README's majority counts


@pytest.mark.model
@pytest.mark.slow
def test_judge_eval_with_smollm2(runner, shared_data, tmp_path):
    from pipelines.cli.main import cli

    out = tmp_path / "je.json"
    res = runner.invoke(cli, ["judge-eval", "--judge", "default", "--sample", "2", "--sets", "llmbar_natural,pandalm", "--aspects", "helpfulness",
                              "--max-tokens", "90", "--rationale-chars", "12", "--max-retries", "1", "--data", str(shared_data / "judge_agreement"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "llmbar_natural" in res.output and "93.5" in res.output and "GPT-4 (Vanilla_NoRules, LLMBar)" in res.output
    report = json.loads(out.read_text())
    assert report["structured"] == "regex" and set(report["sets"]) == {"llmbar_natural", "pandalm"}
    for m in report["sets"].values():
        assert m["n"] == 2
        for k in ("acc_original", "acc_swapped", "correct_average", "correct_both", "consistency", "unparsed"):
            assert 0.0 <= m[k] <= 1.0
        assert m["correct_both"] <= min(m["acc_original"], m["acc_swapped"])
