"""The run store: global stages' chunks as one unit, and durable (fsynced) shard writes."""
from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import run_store
from pipelines.run_store import StageDir, shard_stats
from pipelines.stage import rejected_rows


def _table(n: int, start: int = 0) -> pa.Table:
    return pa.table({"id": [f"r{i}" for i in range(start, start + n)]})


def _write(sd: StageDir, kept: pa.Table, chunk_rows: int) -> None:
    rej = rejected_rows(_table(0), [])
    sd.write_global(kept, rej, shard_stats("g", "global", kept.num_rows, kept, rej, 0.0), chunk_rows)


def _read_all(sd: StageDir) -> list[str]:
    return [i for s in sd.kept_shards() for i in sd.read_kept(s).column("id").to_pylist()]


def test_global_output_reads_only_its_own_chunks(tmp_path):
    # bug: a global stage re-chunked into kept/<k>.parquet without clearing stale chunks, so
    # an earlier attempt with more output (or a crash mid-write) left chunks read back as rows
    sd = StageDir(tmp_path, 3, "dedup", "abc")
    kept_dir = sd.path / "kept"
    kept_dir.mkdir(parents=True)
    for k in range(3):  # what an earlier, larger attempt left behind (the old layout)
        pq.write_table(_table(2, 100 + 2 * k), kept_dir / f"{k:05d}.parquet")
    _write(sd, _table(3), chunk_rows=2)
    assert sd.kept_shards() == [0, 1]
    assert _read_all(sd) == ["r0", "r1", "r2"]
    assert sorted(p.name for p in kept_dir.iterdir() if not p.name.startswith(".")) == sorted(sd._global_chunks())  # stale ones removed


def test_global_output_is_one_unit_when_the_write_crashes(tmp_path, monkeypatch):
    sd = StageDir(tmp_path, 0, "select", "abc")
    _write(sd, _table(6), chunk_rows=2)
    first = _read_all(sd)
    # a second attempt (same fingerprint, output of another size) dies before its marker
    real = run_store.atomic_write_bytes

    def die_on_marker(path, data):
        if path.name == "global.json":
            raise KeyboardInterrupt("killed")
        real(path, data)

    monkeypatch.setattr(run_store, "atomic_write_bytes", die_on_marker)
    with pytest.raises(KeyboardInterrupt):
        _write(sd, _table(1, 50), chunk_rows=2)
    assert _read_all(sd) == first  # the finished unit is intact, the torn one invisible
    monkeypatch.setattr(run_store, "atomic_write_bytes", real)
    _write(sd, _table(1, 50), chunk_rows=2)
    assert _read_all(sd) == ["r50"]


def test_shard_data_is_fsynced_before_the_done_marker(tmp_path, monkeypatch):
    # bug: atomic_write_table renamed the parquet file without fsync (only the stats marker
    # was fsynced), so after a power loss a shard could be marked done over a torn file
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    sd = StageDir(tmp_path, 0, "s", "abc")
    kept = _table(3)
    rej = rejected_rows(_table(0), [])
    sd.write_shard(0, kept, rej, shard_stats("s", 0, 3, kept, rej, 0.0))
    marker = events.index(("replace", str(sd.path / "stats" / "00000.json")))
    for sub in ("kept", "rejected"):
        final = str(sd.path / sub / "00000.parquet")
        rep = events.index(("replace", final))
        synced = [i for i, (kind, p) in enumerate(events) if kind == "fsync" and p.startswith(str(sd.path / sub / ".00000.parquet.tmp"))]
        assert synced and synced[0] < rep, f"{sub} data not fsynced before its rename"
        dir_synced = [i for i, e in enumerate(events) if e == ("fsync", str(sd.path / sub))]
        assert dir_synced and rep < dir_synced[0] < marker, f"{sub} folder not fsynced before the marker"
