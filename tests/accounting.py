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
        assert st["rows_in"] == st["kept"] + st["rejected"], st
        assert st["rows_in"] == prev, (st["name"], st["rows_in"], prev)
        assert sum(st["reasons"].values()) == st["rejected"], st
        prev = st["kept"]
    rows = pq.read_table(out / "data" / "train-00000-of-00001.parquet").num_rows
    assert rows == prev
    rejected_files = sum(pq.read_metadata(f).num_rows for f in (out / "rejected").glob("*.parquet")) if (out / "rejected").exists() else 0
    assert rejected_files == sum(s["rejected"] for s in manifest["stages"])
    return manifest
