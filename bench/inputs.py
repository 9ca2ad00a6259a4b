"""Input reader benchmark: the Arrow JSON Lines reader vs the old per-line reader.

Run: ``.venv/bin/python bench/inputs.py [--rows N] [--runs 3] [--json out.json]``.
Details go to stderr; the last stdout line is ``speedup: X`` = old reader seconds / new
reader seconds on the same file, in the same process (median over ``--runs``).

Notes (latest run, 2026-12-02, 2 cores shared with other engineers' jobs: load average
16-21 during the run, so absolute times are several times an idle box's; read the ratio):
    1,000,000 Alpaca rows (the 5,000 seed rows repeated, ``instruction``/``input``/``output``,
    every 7th row with an extra ``id`` key the first row lacks), 411 MB of JSON Lines.
    New reader (``pyarrow.json``, union schema, UTF-8 check) median 19.5 s (13.4-21.0 over
    3 runs) vs the old per-line reader 33.0 s (22.1-46.3): **speedup 1.7x (1.6-2.2)**; the
    old reader also loses the ``id`` column. ``polars.read_ndjson`` 12.0 s (11.7-14.2), not
    used: it turns a number or an object in a text column into text without a word.
    ``Source.table()`` (reader + SFT columns + content ids, polars-encoded) 24.3 s
    (24.1-28.7); per-row ``json.dumps`` content ids had taken ~60 s of an 80 s
    ``Source.table()`` in an earlier run. For scale, curate's cheapest global stage,
    ``exact_dedup`` on instruction+response, took 30.3 s (29.2-39.1) on the same rows, and
    every later curate stage (MinHash ~56k rows/s, MiniLM embeddings ~130-500 texts/s, deita
    LLM scoring) is slower still: the reader is not the slowest part of ``curate``.
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

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SEEDS = Path(os.environ.get("ALIGNCRAFT_SHARED_DATA", REPO.parent / "shared" / "data")) / "seeds" / "alpaca_data_random5000.json"


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def make_file(path: Path, rows: int) -> None:
    """``rows`` Alpaca records; every 7th carries an ``id`` the first record lacks."""
    seeds = json.loads(SEEDS.read_text())
    with open(path, "w") as f:
        for i in range(rows):
            r = dict(seeds[i % len(seeds)])
            if i % 7 == 3:
                r["id"] = f"row-{i}"
            f.write(json.dumps(r) + "\n")


def old_reader(path: Path) -> pa.Table:
    """The reader this replaced: json.loads per line, then ``pa.Table.from_pylist`` (which
    takes its columns from the first record: it drops ``id`` here, the bug it had)."""
    rows = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8")
            if line.strip():
                rows.append(json.loads(line))
    return pa.Table.from_pylist(rows)


def polars_reader(path: Path):
    """The other candidate, for reference: faster, but it silently turns a number or an
    object in a text column into text (``{"a": 1}`` -> ``'{"a":1}'``), where Arrow refuses
    the file and the reader names the line."""
    import polars as pl

    return pl.read_ndjson(path, infer_schema_length=None)


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from filters.dedup.exact import ExactDedup
    from pipelines.inputs import read_input
    from pipelines.source import Source

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "alpaca.jsonl"
        make_file(path, args.rows)
        log(f"{args.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB")
        new_s, old_s, source_s, dedup_s, polars_s = [], [], [], [], []
        for run in range(args.runs):
            t_new, table = timed(read_input, path)
            t_old, old = timed(old_reader, path)
            t_pl, _ = timed(polars_reader, path)
            assert table.num_rows == old.num_rows == args.rows
            assert "id" in table.column_names and "id" not in old.column_names
            # the rest of what curate does to the input before its first stage, and its
            # cheapest global stage, for scale
            t_src, src = timed(lambda: Source({"type": "input", "normalize": "sft", "required": ["instruction", "response"], "ids": "content"}, seed=0, input_path=str(path)).table())
            t_dedup, _ = timed(ExactDedup(column=["instruction", "response"]).process, src)
            new_s.append(t_new), old_s.append(t_old), source_s.append(t_src), dedup_s.append(t_dedup), polars_s.append(t_pl)
            log(f"run {run + 1}: new reader {t_new:.2f} s, old reader {t_old:.2f} s ({t_old / t_new:.1f}x), polars.read_ndjson {t_pl:.2f} s; Source.table() incl. reader and content ids {t_src:.2f} s; exact_dedup {t_dedup:.2f} s")
    ratios = [o / n for o, n in zip(old_s, new_s)]
    result = {
        "rows": args.rows, "new_s": new_s, "old_s": old_s, "source_table_s": source_s, "exact_dedup_s": dedup_s, "polars_s": polars_s,
        "speedup_median": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    log(f"new reader median {statistics.median(new_s):.2f} s ({min(new_s):.2f}-{max(new_s):.2f}); old median {statistics.median(old_s):.2f} s ({min(old_s):.2f}-{max(old_s):.2f})")
    log(f"speedup {min(ratios):.1f}-{max(ratios):.1f}x over {args.runs} runs")
    print(f"new_reader_s: {statistics.median(new_s):.2f}")
    print(f"old_reader_s: {statistics.median(old_s):.2f}")
    print(f"speedup: {statistics.median(ratios):.1f}")


if __name__ == "__main__":
    main()
