"""``aligncraft crr``: input errors without a model; a real ratio with SmolLM2 as judge."""
from __future__ import annotations

import json

import pytest

from pipelines.cli.main import cli

PROMPTS = ["Name three fruits.", "What is 2 + 2?", "Say hello in French."]


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_crr_refuses_files_that_answer_different_prompts(runner, tmp_path):
    a = write(tmp_path / "a.jsonl", [{"instruction": "q1", "response": "x"}])
    b = write(tmp_path / "b.jsonl", [{"prompt": "q2", "output": "y"}])  # SFT aliases are read
    result = runner.invoke(cli, ["crr", "--judge", "default", "--a", str(a), "--b", str(b)])
    assert result.exit_code != 0
    assert "prompt not found in" in result.output and "a.jsonl, row 1" in result.output
    empty = write(tmp_path / "c.jsonl", [{"instruction": "q1"}])
    result = runner.invoke(cli, ["crr", "--judge", "default", "--a", str(empty), "--b", str(b)])
    assert result.exit_code != 0 and "no 'response' column" in result.output


@pytest.mark.model
def test_crr_prints_a_ratio_with_a_real_judge(runner, tmp_path):
    a = write(tmp_path / "target.jsonl", [{"instruction": p, "response": "I do not know."} for p in PROMPTS])
    b = write(tmp_path / "strong.jsonl", [{"instruction": p, "response": r} for p, r in zip(PROMPTS, ["Apple, pear, plum.", "4", "Bonjour"])])
    out = tmp_path / "verdicts.jsonl"
    result = runner.invoke(cli, ["crr", "--judge", "default", "--a", str(a), "--b", str(b), "--structured", "--max-model-len", "2048", "--out", str(out)])
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("crr: ")
    ratio = float(last.split(": ")[1])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["instruction"] for r in rows] == PROMPTS
    verdicts = [r["verdict"] for r in rows]
    assert set(verdicts) <= {"a", "b", "tie"}  # structured: every reply parses
    assert ratio == sum(v != "b" for v in verdicts) / len(verdicts)
