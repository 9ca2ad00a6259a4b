"""Distributed MinHash (``filters.dedup.minhash_ray``) on a local Ray cluster vs the local
``MinHashDedup`` stage: docs/s and the driver's peak memory, same data, same process.

Both sides start from the same parquet shards on disk, as the two executors do for a global
stage: the local stage reads them into the driver and runs ``process`` there; the Ray side
reads them in tasks (``from_arrow_refs``, as ``--executor ray`` does) and runs
``ray_duplicates``, whose driver only sees the verified edges (``driver``) or nothing but
the result (``label propagation``, ``driver_edges_max=0``). Every run checks the Ray result
equals the local one (same duplicates, same keepers).

Peak memory is the driver's peak RSS during the call above its RSS at the start (VmHWM,
reset through ``/proc/self/clear_refs`` before each run); it counts the object-store pages
the driver touches. Worker memory is not counted: it is spread over the cluster.

Run: ``.venv/bin/python bench/ray_dedup.py [--docs 30000] [--runs 3] [--cpus 2] [--json out.json]``.
Details go to stderr; stdout gets ``name: value`` lines, the headline ``ratio`` last
(Ray docs/s / local docs/s, components on the driver).

Notes (latest runs, 2026-12-02, the 2 shared cores quiet for once -- load average 0.2-1.2 --,
local Ray cluster of 2 CPUs, sort shuffle, 2 partitions; MinHashDedup defaults: word 3-grams,
112 permutations, 22 x 5 bands, threshold 0.7; corpus = bench/curation.py's 5,000 Alpaca
instructions + edited copies; every run's Ray result equalled the local one):
    30,000 docs, 2,000-row shards, two invocations of 3 runs (4,101 duplicates, 4,869 edges):
        local 92k / 100k docs/s (0.26-0.44 s), Ray 11.3k / 8.9k docs/s (2.6-3.5 s), Ray with
        label propagation (3 large-star rounds) 8.3k / 6.1k docs/s (3.5-5.1 s):
        **ratio 0.104 (0.098..0.125) and 0.088 (0.084..0.124)**, ratio_lp 0.090 / 0.058.
        Driver peak above start: local 34-63 MB, Ray < 1 MB (the 4,869 edges are ~200 kB:
        below what VmHWM resolves here, so memory_ratio prints ~0), label propagation 3-9 MB.
    200,000 docs, 10,000-row shards, 2 runs (48,069 duplicates):
        local 60k docs/s (3.4 s), Ray 11.7k docs/s (15-19 s), label propagation 11.4k docs/s
        (17.5 s): **ratio 0.197 (0.176..0.218)**, ratio_lp 0.191. Driver peak: local 147-238
        MB, Ray 6-9 MB (memory_ratio 0.042), label propagation 5-17 MB (0.054).
    On one 2-CPU box Ray only adds work: three shuffles (22 band records per row, then two
    signature joins), task and object-store overhead (~2.5 s fixed); the local stage is one
    vectorised pass. The ratio grows with the corpus (0.10 -> 0.20) and the driver's memory
    stays flat while the local stage's grows with the rows: that, and more machines, is the
    point. Label propagation costs 1-2 s more here (3 large-star rounds + 2 small-star, the
    label join and the keeper groupby) and keeps the edge list off the driver.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
SEEDS = Path(os.environ.get("ALIGNCRAFT_SHARED_DATA", REPO.parent / "shared" / "data")) / "seeds" / "alpaca_data_random5000.json"


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measured(fn, *args, **kwargs):
    """``(result, seconds, peak MB above the start)`` of one call, from the driver's VmHWM."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    start = rss_mb()
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t, max(0.0, rss_mb("VmHWM") - start)


def write_shards(texts: list[str], folder: Path, shard_rows: int) -> list[str]:
    """The corpus as parquet shards (``id``, ``instruction``, the global row index)."""
    from filters.dedup.minhash_ray import ROW

    paths = []
    for k, s in enumerate(range(0, len(texts), shard_rows)):
        part = texts[s:s + shard_rows]
        t = pa.table({"id": [f"d{i:07d}" for i in range(s, s + len(part))], "instruction": part, ROW: pa.array(np.arange(s, s + len(part)), pa.int64())})
        paths.append(str(folder / f"{k:05d}.parquet"))
        pq.write_table(t, paths[-1])
    return paths


def local_dedup(paths: list[str], stage) -> dict[int, str]:
    table = pa.concat_tables([pq.read_table(p, columns=["id", "instruction"]) for p in paths])
    _kept, rejected = stage.process(table)
    rows = {v: k for k, v in enumerate(table.column("id").to_pylist())}
    return dict(zip((rows[i] for i in rejected.column("id").to_pylist()), rejected.column("reject_reason").to_pylist()))


def _read(path: str) -> pa.Table:
    return pq.read_table(path)


def ray_dedup(paths: list[str], stage, *, driver_edges_max: int | None) -> dict[int, str]:
    import ray
    import ray.data

    from filters.dedup.minhash_ray import DRIVER_EDGES_MAX, ray_duplicates

    read = ray.remote(_read)
    ds = ray.data.from_arrow_refs([read.remote(p) for p in paths])
    p = stage.params
    dups = ray_duplicates(ds, columns=["instruction"], shingle=p["shingle"], ngram=p["ngram"], num_perm=p["num_perm"], seed=p["seed"],
                          bands=p["bands"], rows=p["rows"], threshold=p["threshold"], keep=p["keep"],
                          driver_edges_max=DRIVER_EDGES_MAX if driver_edges_max is None else driver_edges_max)
    return dict(zip(dups.column("row").to_pylist(), ("duplicate_of:" + k for k in dups.column("keeper_id").to_pylist())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=30_000, help="corpus size: 5,000 Alpaca instructions + edited copies")
    ap.add_argument("--shard-rows", type=int, default=2_000, help="rows per parquet shard (one Ray block each)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import logging

    import ray
    from curation import (
        perturbed_corpus,  # bench/curation.py: the same near-duplicate corpus
    )

    from filters.dedup.minhash import MinHashDedup

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logging.getLogger("aligncraft").addHandler(handler)  # edges and label-propagation rounds
    logging.getLogger("aligncraft").setLevel(logging.INFO)
    texts = [r["instruction"] for r in json.loads(SEEDS.read_text())]
    docs, _family = perturbed_corpus(texts, args.docs)
    stage = MinHashDedup()
    p = stage.params
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False, logging_level="ERROR",
             object_store_memory=512 * 1024**2)
    ray.data.DataContext.get_current().enable_progress_bars = False
    log(f"{len(docs)} docs in {args.shard_rows}-row shards; word {p['ngram']}-grams, {p['num_perm']} perms, {p['bands']}x{p['rows']}, "
        f"threshold {p['threshold']}; Ray: {args.cpus} CPUs; load average {os.getloadavg()[0]:.1f}")
    sides = {"local": lambda paths: local_dedup(paths, stage),
             "ray": lambda paths: ray_dedup(paths, stage, driver_edges_max=None),
             "ray_lp": lambda paths: ray_dedup(paths, stage, driver_edges_max=0)}
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_shards(docs, Path(tmp), args.shard_rows)
        (Path(tmp) / "warm").mkdir()
        warm = write_shards(docs[:2000], Path(tmp) / "warm", 500)
        for fn in sides.values():  # warm-up: imports, Ray workers, first calls
            fn(warm)
        for k in range(args.runs):  # interleaved: the shared machine's load drifts
            run, want = {"load": os.getloadavg()[0]}, None
            for name, fn in sides.items():
                got, sec, peak = measured(fn, paths)
                want = got if want is None else want
                assert got == want, f"{name} disagrees with the local stage: {len(got)} vs {len(want)} duplicates"
                run[name] = {"s": sec, "docs_per_s": len(docs) / sec, "peak_mb": peak}
            run["duplicates"] = len(want)
            runs.append(run)
            log(f"run {k + 1} (load {run['load']:.1f}): " + ", ".join(f"{n} {run[n]['s']:.2f} s / {run[n]['peak_mb']:.0f} MB" for n in sides)
                + f"; {run['duplicates']} duplicates, all equal")
    ray.shutdown()

    med = {n: {m: statistics.median(r[n][m] for r in runs) for m in ("s", "docs_per_s", "peak_mb")} for n in sides}
    ratios = [r["ray"]["docs_per_s"] / r["local"]["docs_per_s"] for r in runs]
    lp = [r["ray_lp"]["docs_per_s"] / r["local"]["docs_per_s"] for r in runs]
    mem = [r["ray"]["peak_mb"] / max(r["local"]["peak_mb"], 1e-9) for r in runs]
    mem_lp = [r["ray_lp"]["peak_mb"] / max(r["local"]["peak_mb"], 1e-9) for r in runs]
    if args.json:
        args.json.write_text(json.dumps({"args": {**vars(args), "json": str(args.json)}, "docs": len(docs), "runs": runs, "median": med}, indent=1))
    for n in sides:
        print(f"{n}_docs_per_s: {med[n]['docs_per_s']:.0f}")
    for n in sides:
        print(f"{n}_driver_peak_mb: {med[n]['peak_mb']:.0f}")
    print(f"memory_ratio_lp: {statistics.median(mem_lp):.3f}")
    print(f"memory_ratio: {statistics.median(mem):.3f}")
    print(f"ratio_lp: {statistics.median(lp):.3f}")
    print(f"ratio_spread: {min(ratios):.3f}..{max(ratios):.3f}")
    print(f"ratio: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
