"""Durability: SIGKILL a running pipeline at random points, resume with the same command,
and compare with an uninterrupted run: same ids, no duplicates, nothing missing, same rows."""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.accounting import assert_accounting, kill_at_random_moments

RECIPE = {
    "description": "CPU-only recipe for the resume test",
    "batch_size": 40,
    "source": {"type": "input", "columns": {"response": "output"}},
    "stages": [
        {"name": "clean", "stage": "empty_filter", "column": ["instruction", "response"]},
        {"name": "short", "stage": "length_filter", "column": "response", "min_chars": 3},
        {"name": "dedup", "stage": "exact_dedup", "column": "instruction"},
        {"name": "long", "stage": "length_filter", "column": "instruction", "max_chars": 120},
        {"name": "lengths", "stage": "text_lengths", "columns": ["instruction", "response"]},
        {"name": "shape", "stage": "select_columns", "drop": ["input"]},
    ],
}


def command(recipe: Path, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli.main", "run", str(recipe), "--input", str(data), "--out", str(out), "--limit", "2000", "--no-progress", "--workers", "1"]


def read_final(out: Path):
    return pq.read_table(out / "data" / "train-00000-of-00001.parquet")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("resume")
    recipe = d / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    data = shared_data / "seeds" / "alpaca_data_random5000.json"
    ref = d / "reference"
    subprocess.run(command(recipe, data, ref), check=True, capture_output=True, timeout=300)
    return recipe, data, ref, d


def test_reference_run_accounts_for_every_row(setup):
    _, _, ref, _ = setup
    manifest = assert_accounting(ref)
    assert manifest["stages"][1]["reasons"].get("too_short", 0) > 0  # Alpaca has one-word outputs ("No")
    assert manifest["stages"][3]["reasons"].get("too_long", 0) > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_then_resume_equals_uninterrupted(setup, seed):
    recipe, data, ref, d = setup
    out = d / f"killed{seed}"
    rng = random.Random(seed)
    kills = kill_at_random_moments(command(recipe, data, out), out, rng)  # main process and workers, mid-write
    subprocess.run(command(recipe, data, out), check=True, capture_output=True, timeout=300)
    assert kills >= 1, "the run finished before any kill: make it longer"
    a, b = read_final(ref), read_final(out)
    ids = b.column("id").to_pylist()
    assert len(ids) == len(set(ids)), "duplicated rows after resume"
    assert ids == a.column("id").to_pylist()
    assert a.equals(b)
    assert_accounting(out)


def test_rerun_of_finished_run_recomputes_nothing(setup):
    recipe, data, ref, _ = setup
    before = {p: p.stat().st_mtime_ns for p in (ref / "run" / "stages").rglob("*.parquet")}
    subprocess.run(command(recipe, data, ref), check=True, capture_output=True, timeout=300)
    after = {p: p.stat().st_mtime_ns for p in (ref / "run" / "stages").rglob("*.parquet")}
    assert before == after


def test_edited_stage_recomputes_itself_and_downstream_only(setup, tmp_path):
    recipe, data, ref, _ = setup
    out = tmp_path / "edit"
    subprocess.run(command(recipe, data, out), check=True, capture_output=True, timeout=300)
    stages = out / "run" / "stages"
    before = {p.name for p in stages.iterdir()}
    subprocess.run(command(recipe, data, out) + ["--set", "long.max_chars=100"], check=True, capture_output=True, timeout=300)
    after = {p.name for p in stages.iterdir()}
    new = sorted(after - before)
    assert [n.split("-")[1] for n in new] == ["long", "lengths", "shape"]
