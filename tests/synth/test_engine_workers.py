"""Engine workers (synth/backends/workers.py) and the executor around them: one process per
model, two models in one recipe (side by side when their memory shares fit, else one after
the other), data parallel workers, a worker killed mid-call, and SIGKILL + resume of an LLM
recipe. Mechanics on the tiny random model; SmolLM2 where a second real model is needed."""
from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.accounting import assert_accounting, kill_at_random_moments

pytest.importorskip("vllm")
pytestmark = pytest.mark.model

ENGINE = {"max_model_len": 256}


def write_recipe(path: Path, stages: list[dict], *, llm: dict | None = None, batch_size: int = 4, num_rows: int = 8) -> Path:
    recipe = {"description": "engine worker test", "seed": 0, "batch_size": batch_size, "llm": llm or {"backend": "vllm", "max_model_len": 256}, "source": {"type": "generate", "num_rows": num_rows}, "stages": stages}
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def worker_events(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "synth.backends.workers" and ("starting" in r.getMessage() or "stopping" in r.getMessage())]


@pytest.mark.parametrize("share,expect", [(0.4, "side_by_side"), (0.9, "one_after_the_other")])
def test_two_models_in_one_recipe(tmp_path, tiny_model_dir, caplog, monkeypatch, share, expect):
    from pipelines.run import run_recipe

    monkeypatch.delenv("ALIGNCRAFT_KEEP_ENGINES", raising=False)  # this run's own pool: its workers start and stop
    caplog.set_level(logging.INFO, logger="synth.backends.workers")
    tiny = str(tiny_model_dir)
    stages = [
        {"name": "generate", "stage": "magpie_instructions", "model": tiny, "max_tokens": 8, "engine": {"memory_share": share}},
        {"name": "respond", "stage": "respond", "model": "default", "sampling": {"max_tokens": 8}, "engine": {"memory_share": share, "max_model_len": 1024}},
        {"name": "lengths", "stage": "text_lengths", "columns": ["instruction", "response"]},
    ]
    recipe = write_recipe(tmp_path / "two.yaml", stages)
    res = run_recipe(str(recipe), out_dir=tmp_path / "out", progress=False)
    manifest = assert_accounting(tmp_path / "out")
    assert manifest["stages"][0]["rows_in"] == 8
    models = {s["name"]: s["models"]["model"] for s in res.stages if s["models"]}
    assert models == {"generate": tiny, "respond": "default"}
    ev = worker_events(caplog)
    start_tiny = ev.index(f"starting engine worker for vllm:{tiny}")
    start_smol = ev.index("starting engine worker for vllm:default")
    stop_tiny = ev.index(f"stopping engine worker for vllm:{tiny}")
    if expect == "side_by_side":
        assert start_tiny < start_smol < stop_tiny  # both resident while shards stream through
    else:
        assert start_tiny < stop_tiny < start_smol  # the tiny model's worker ended before SmolLM2 loaded


def test_data_parallel_workers_share_the_calls(tmp_path, tiny_model_dir, caplog, monkeypatch):
    from pipelines.run import run_recipe

    monkeypatch.delenv("ALIGNCRAFT_KEEP_ENGINES", raising=False)
    caplog.set_level(logging.INFO, logger="synth.backends.workers")
    stages = [{"name": "generate", "stage": "magpie_instructions", "max_tokens": 6}, {"name": "respond", "stage": "respond", "sampling": {"max_tokens": 6}}]
    recipe = write_recipe(tmp_path / "dp.yaml", stages, llm={"backend": "vllm", "model": str(tiny_model_dir), "max_model_len": 256, "data_parallel": 2}, batch_size=8, num_rows=16)
    run_recipe(str(recipe), out_dir=tmp_path / "out", progress=False)
    assert_accounting(tmp_path / "out")
    ready = [r.getMessage() for r in caplog.records if "ready (pid" in r.getMessage()]
    assert any("#0" in m for m in ready) and any("#1" in m for m in ready), ready


def test_killed_worker_is_restarted_and_its_calls_resent(tiny_model_dir):
    from synth.backends.workers import EngineClient, EngineDied

    client = EngineClient("vllm", str(tiny_model_dir), ENGINE)
    try:
        prompts = [f"hello world {i}" for i in range(300)]
        sampling = {"temperature": 1.0, "max_tokens": 48}
        import threading

        result: dict = {}
        t = threading.Thread(target=lambda: result.setdefault("outs", client.generate(prompts, sampling, seeds=list(range(300)))))
        t.start()
        time.sleep(1.0)
        os.kill(client.workers[0].proc.pid, signal.SIGKILL)
        t.join(timeout=300)
        outs = result["outs"]
        assert len(outs) == 300 and all(o.error is None for o in outs)  # re-sent to the new worker: nothing lost
        # a second death is final: one line naming the engine and the signal
        os.kill(client.workers[0].proc.pid, signal.SIGKILL)
        with pytest.raises(EngineDied, match=r"died twice \(killed by signal 9"):
            for _ in range(50):
                client.generate(prompts[:4], {"temperature": 1.0, "max_tokens": 4})
                time.sleep(0.2)
    finally:
        client.close()


# -- SIGKILL at random moments, then resume: an LLM recipe ----------------------------------
def llm_command(recipe: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli.main", "run", str(recipe), "--out", str(out), "--no-progress", "--workers", "1"]


def all_ids(out: Path) -> list[str]:
    ids = pq.read_table(out / "data" / "train-00000-of-00001.parquet").column("id").to_pylist()
    for f in (out / "rejected").glob("*.parquet"):
        ids += pq.read_table(f).column("id").to_pylist()
    return ids


@pytest.fixture(scope="module")
def llm_resume_setup(tmp_path_factory, tiny_model_dir):
    d = tmp_path_factory.mktemp("llm_resume")
    stages = [
        {"name": "generate", "stage": "magpie_instructions", "max_tokens": 12},
        {"name": "respond", "stage": "respond", "sampling": {"max_tokens": 12}},
        {"name": "lengths", "stage": "text_lengths", "columns": ["instruction", "response"]},
        {"name": "dedup", "stage": "exact_dedup", "column": "instruction"},
    ]
    recipe = write_recipe(d / "llm.yaml", stages, llm={"backend": "vllm", "model": str(tiny_model_dir), "max_model_len": 256}, batch_size=6, num_rows=60)
    ref = d / "reference"
    subprocess.run(llm_command(recipe, ref), check=True, capture_output=True, timeout=600)
    return recipe, ref, d


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_llm_recipe_then_resume(llm_resume_setup, seed):
    recipe, ref, d = llm_resume_setup
    out = d / f"killed{seed}"
    rng = random.Random(seed)
    kills = kill_at_random_moments(llm_command(recipe, out), out, rng, max_delay=1.5, wait_s=300)  # main process and engine worker
    subprocess.run(llm_command(recipe, out), check=True, capture_output=True, timeout=600)
    assert kills >= 1
    ids = all_ids(out)
    assert len(ids) == len(set(ids)), "a row was duplicated by the resume"
    assert sorted(ids) == sorted(all_ids(ref)), "a row was lost (or invented) by the resume"
    assert_accounting(out)
