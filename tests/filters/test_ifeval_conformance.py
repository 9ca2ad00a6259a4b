"""Acceptance: verdicts equal Google's reference evaluator on IFEval + GPT-4 responses.

shared/data/ifeval holds the 541 prompts (834 instructions), GPT-4's responses and the
reference's strict and loose verdicts (see shared/data/README.md, section 1).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from filters.verify.ifeval import verify
from filters.verify.ifeval.tokens import PUNKT_DIR

RESPONSES = "input_response_data_gpt4_20231107_145030.jsonl"


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def ifeval(shared_data: Path) -> Path:
    return shared_data / "ifeval"


@pytest.mark.parametrize("mode", ["strict", "loose"])
def test_every_instruction_matches_reference(ifeval: Path, mode: str) -> None:
    prompts = _jsonl(ifeval / "input_data.jsonl")
    responses = {r["prompt"]: r["response"] for r in _jsonl(ifeval / RESPONSES)}
    reference = {r["prompt"]: r["follow_instruction_list"] for r in _jsonl(ifeval / f"reference_eval_results_{mode}.jsonl")}
    assert len(prompts) == 541

    mismatches = []
    n = 0
    for p in prompts:
        got = verify(responses[p["prompt"]], p["prompt"], p["instruction_id_list"], p["kwargs"], mode)
        want = reference[p["prompt"]]
        assert len(got) == len(want)
        for iid, kw, g, w in zip(p["instruction_id_list"], p["kwargs"], got, want):
            n += 1
            if g != w:
                mismatches.append(f"key {p['key']} {iid} {kw}: got {g}, reference {w}")
    assert n == 834
    assert mismatches == []


@pytest.mark.parametrize(("mode", "prompt_ok", "instr_ok"), [("strict", 417, 698), ("loose", 431, 714)])
def test_accuracies_match_reference_summary(ifeval: Path, mode: str, prompt_ok: int, instr_ok: int) -> None:
    from filters.verify.ifeval.evaluate import (
        evaluate,
        read_prompts,
        read_responses,
        summarize,
    )

    results = evaluate(read_prompts(ifeval / "input_data.jsonl"), read_responses(ifeval / RESPONSES), mode=mode)  # type: ignore[arg-type]
    s = summarize(results)
    summary = json.loads((ifeval / "reference_summary.json").read_text())[mode]
    assert (s.prompts_followed, s.prompts) == (prompt_ok, 541) == (summary["prompt_level"]["correct"], summary["prompt_level"]["total"])
    assert (s.instructions_followed, s.instructions) == (instr_ok, 834) == (summary["instruction_level"]["correct"], summary["instruction_level"]["total"])
    assert dict(s.by_id) == {k: v["followed"] for k, v in summary["per_instruction_followed"].items()}
    assert dict(s.by_id_total) == {k: v["total"] for k, v in summary["per_instruction_followed"].items()}


def test_shipped_punkt_model_equals_shared_copy(ifeval: Path) -> None:
    # The package carries its own copy so that it works without shared data: it must
    # stay byte-identical to the one the reference verdicts were made with.
    names = sorted(p.name for p in (ifeval / "punkt_tab_english").iterdir())
    assert names == sorted(p.name for p in PUNKT_DIR.iterdir())
    for name in names:
        assert (PUNKT_DIR / name).read_bytes() == (ifeval / "punkt_tab_english" / name).read_bytes(), name
