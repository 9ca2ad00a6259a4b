"""The row-accounting invariant, checked on every run a test makes."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq


def assert_accounting(out_dir: str | Path) -> dict:
    """Per stage rows in = kept + rejected; each stage's input is the previous stage's kept
    rows; the final dataset has the last stage's kept rows; rejected files hold the rest."""
    out = Path(out_dir)
    manifest = json.loads((out / "run" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    prev = manifest["source"]["rows"]
    for st in manifest["stages"]:
        # a stage that makes new rows (CodecLM's metadata slots) records the input rows its
        # kept rows came from as "consumed"
        assert st["rows_in"] == st.get("consumed", st["kept"]) + st["rejected"], st
        assert st["rows_in"] == prev, (st["name"], st["rows_in"], prev)
        assert sum(st["reasons"].values()) == st["rejected"], st
        prev = st["kept"]
    rows = pq.read_table(out / "data" / "train-00000-of-00001.parquet").num_rows
    assert rows == prev
    rejected_files = sum(pq.read_metadata(f).num_rows for f in (out / "rejected").glob("*.parquet")) if (out / "rejected").exists() else 0
    assert rejected_files == sum(s["rejected"] for s in manifest["stages"])
    return manifest


def kill_at_random_moments(cmd: list[str], out: Path, rng, *, attempts: int = 3, max_delay: float = 0.6, wait_s: float = 120) -> int:
    """Start ``cmd`` ``attempts`` times; each time wait until it has finished a new shard of
    ``out``'s run, then SIGKILL its whole process group (workers too) a random moment later.
    Returns how many attempts were killed (the others finished on their own)."""
    import os
    import signal
    import subprocess
    import time

    kills = 0
    for _ in range(attempts):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        before = len(list(out.glob("run/stages/*/stats/*.json")))
        deadline = time.time() + wait_s
        while proc.poll() is None and time.time() < deadline and len(list(out.glob("run/stages/*/stats/*.json"))) <= before:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, max_delay))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
    return kills
