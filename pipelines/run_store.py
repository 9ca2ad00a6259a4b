"""The run directory: resolved config, per-stage parquet shards, rejected rows, manifest, log.

Layout::

    run/config.yaml   run/manifest.json   run/log.txt
    run/stages/<NN>-<name>-<fingerprint>/{kept,rejected,stats}/<shard>.parquet|json

A shard is finished when its stats file exists; kept and rejected are written first, each
atomically (temp file, fsync, ``os.replace``, fsync of the folder), so a kill or a power
loss at any moment leaves either a finished shard or one that is recomputed on resume,
never a torn file under a done marker. A global stage's output is one unit: chunks named
for the attempt (``kept/global-<token>-<k>.parquet``) and a marker ``stats/global.json``
that lists them, written last; only the listed chunks are read, so chunks of an earlier
attempt whose output had another size are never read back as rows.
The fingerprint covers the stage type, version, source code, parameters and everything
upstream, so an edited stage recomputes itself and what follows, and nothing else.
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


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (the new name lives in the folder's entries)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_table(path: Path, table: pa.Table) -> None:
    """Write parquet to a temp file, fsync it, rename it into place, fsync the folder.

    Without the fsyncs a power loss can keep the (fsynced) stats marker that says the shard
    is done while the parquet data it vouches for never reached the disk.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        pq.write_table(table, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


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

    def write_global(self, kept: pa.Table, rejected: pa.Table, stats: dict[str, Any], chunk_rows: int) -> None:
        """Write a global stage's output as one unit: ``kept`` in chunks of ``chunk_rows``
        (the next stages' shards), ``rejected``, then the marker that lists the chunks.

        Chunk names carry a token unique to this attempt, so a crash before the marker
        leaves only unlisted files; after it, earlier attempts' chunks are removed.
        """
        import uuid

        token = uuid.uuid4().hex[:8]
        n = max(1, -(-kept.num_rows // chunk_rows))
        chunks = [f"global-{token}-{k:05d}.parquet" for k in range(n)]
        for k, name in enumerate(chunks):
            atomic_write_table(self.path / "kept" / name, kept.slice(k * chunk_rows, chunk_rows))
        atomic_write_table(self.path / "rejected" / "global.parquet", rejected)
        atomic_write_bytes(self.path / "stats" / "global.json", json.dumps({**stats, "chunks": chunks}).encode())
        for stale in (self.path / "kept").glob("*.parquet"):
            if stale.name not in chunks:
                stale.unlink(missing_ok=True)

    def _global_chunks(self) -> list[str] | None:
        marker = self.path / "stats" / "global.json"
        if not marker.is_file():
            return None
        chunks = json.loads(marker.read_text()).get("chunks")
        if chunks is None:  # written before markers listed their chunks: kept/<k>.parquet
            chunks = sorted(p.name for p in (self.path / "kept").glob("[0-9]*.parquet"))
        return list(chunks)

    def read_kept(self, shard: int | str) -> pa.Table:
        chunks = self._global_chunks()
        if chunks is not None and isinstance(shard, int):
            return pq.read_table(self.path / "kept" / chunks[shard])
        return pq.read_table(self.path / "kept" / f"{_s(shard)}.parquet")

    def kept_shards(self) -> list[int]:
        chunks = self._global_chunks()
        if chunks is not None:  # a global stage: the chunks its marker lists, in order
            return list(range(len(chunks)))
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


def shard_stats(stage: str, shard: int | str, rows_in: int, kept: pa.Table, rejected: pa.Table, seconds: float, *, consumed: int | None = None) -> dict[str, Any]:
    """One (stage, shard)'s counts; ``consumed`` (input rows the kept rows came from) is
    recorded only when it differs from ``kept``, for a stage that makes new rows."""
    reasons: dict[str, int] = {}
    if rejected.num_rows:
        import pyarrow.compute as pc

        from pipelines.stage import REASON

        keys = pc.extract_regex(rejected.column(REASON).combine_chunks(), r"^(?P<k>[^:]*)").field("k")
        vc = pc.value_counts(keys)
        for item in vc.to_pylist():
            reasons[str(item["values"])] = int(item["counts"])
    out = {"stage": stage, "shard": shard, "rows_in": rows_in, "kept": kept.num_rows, "rejected": rejected.num_rows, "reasons": reasons, "seconds": round(seconds, 3)}
    if consumed is not None and consumed != kept.num_rows:
        out["consumed"] = consumed
    return out


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"rows_in": 0, "kept": 0, "rejected": 0, "reasons": {}, "seconds": 0.0, "shards": len(parts)}
    consumed = 0  # input rows the kept rows came from (differs from kept for a stage that makes rows)
    for p in parts:
        for k in ("rows_in", "kept", "rejected"):
            total[k] += p[k]
        consumed += p.get("consumed", p["kept"])
        total["seconds"] += p.get("seconds", 0.0)
        for r, n in p["reasons"].items():
            total["reasons"][r] = total["reasons"].get(r, 0) + n
    total["seconds"] = round(total["seconds"], 3)
    if consumed != total["kept"]:
        total["consumed"] = consumed
    return total
