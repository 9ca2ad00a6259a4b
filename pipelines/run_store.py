"""The run directory: resolved config, per-stage parquet shards, rejected rows, manifest, log.

Layout::

    run/config.yaml   run/manifest.json   run/log.txt
    run/stages/<NN>-<name>-<fingerprint>/{kept,rejected,stats}/<shard>.parquet|json

A shard is finished when its stats file exists; kept and rejected are written first, each
atomically (temp file + ``os.replace``), so a kill at any moment leaves either a finished
shard or one that is recomputed on resume, never a half-written file that is reused.
The fingerprint covers the stage type, version, parameters and everything upstream, so an
edited stage recomputes itself and what follows, and nothing else.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

REASON_KEY = re.compile(r"^([^:]+)")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_table(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def reason_key(reason: str) -> str:
    """``duplicate_of:ab12`` -> ``duplicate_of``: the part that groups in counts."""
    m = REASON_KEY.match(reason or "")
    return m.group(1) if m else str(reason)


class StageDir:
    def __init__(self, root: Path, index: int, name: str, fp: str) -> None:
        self.path = root / "stages" / f"{index:02d}-{name}-{fp}"
        self.name = name
        self.fp = fp

    @classmethod
    def at(cls, path: str | Path, name: str = "") -> "StageDir":
        sd = cls.__new__(cls)
        sd.path, sd.name, sd.fp = Path(path), name, Path(path).name.rsplit("-", 1)[-1]
        return sd

    def shard_done(self, shard: int | str) -> bool:
        return (self.path / "stats" / f"{_s(shard)}.json").is_file()

    def write_shard(self, shard: int | str, kept: pa.Table, rejected: pa.Table, stats: dict[str, Any]) -> None:
        atomic_write_table(self.path / "kept" / f"{_s(shard)}.parquet", kept)
        atomic_write_table(self.path / "rejected" / f"{_s(shard)}.parquet", rejected)
        atomic_write_bytes(self.path / "stats" / f"{_s(shard)}.json", json.dumps(stats).encode())

    def read_kept(self, shard: int | str) -> pa.Table:
        return pq.read_table(self.path / "kept" / f"{_s(shard)}.parquet")

    def kept_shards(self) -> list[int]:
        if self.shard_done("global"):  # a global stage re-chunks its output into kept/<k>.parquet
            return sorted(int(p.stem) for p in (self.path / "kept").glob("[0-9]*.parquet"))
        return sorted(int(p.stem) for p in (self.path / "stats").glob("[0-9]*.json"))

    def iter_kept(self) -> Iterator[pa.Table]:
        for s in self.kept_shards():
            yield self.read_kept(s)

    def iter_rejected(self) -> Iterator[pa.Table]:
        for p in sorted((self.path / "rejected").glob("*.parquet")):
            if self.shard_done(p.stem):
                yield pq.read_table(p)

    def stats(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted((self.path / "stats").glob("*.json")):
            out.append(json.loads(p.read_text()))
        return out


def _s(shard: int | str) -> str:
    return f"{shard:05d}" if isinstance(shard, int) else shard


def shard_stats(stage: str, shard: int | str, rows_in: int, kept: pa.Table, rejected: pa.Table, seconds: float) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    if rejected.num_rows:
        import pyarrow.compute as pc

        from pipelines.stage import REASON

        keys = pc.extract_regex(rejected.column(REASON).combine_chunks(), r"^(?P<k>[^:]*)").field("k")
        vc = pc.value_counts(keys)
        for item in vc.to_pylist():
            reasons[str(item["values"])] = int(item["counts"])
    return {"stage": stage, "shard": shard, "rows_in": rows_in, "kept": kept.num_rows, "rejected": rejected.num_rows, "reasons": reasons, "seconds": round(seconds, 3)}


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"rows_in": 0, "kept": 0, "rejected": 0, "reasons": {}, "seconds": 0.0, "shards": len(parts)}
    for p in parts:
        for k in ("rows_in", "kept", "rejected"):
            total[k] += p[k]
        total["seconds"] += p.get("seconds", 0.0)
        for r, n in p["reasons"].items():
            total["reasons"][r] = total["reasons"].get(r, 0) + n
    total["seconds"] = round(total["seconds"], 3)
    return total
