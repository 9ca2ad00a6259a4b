"""CHES benchmark: the batched ``ches_filter`` stage vs the per-example reference loop (one
unpadded sequence per response through the full model with ``output_hidden_states``, as
``compute_preference_similarity_per_example.py`` does), same process, same model, same pairs.

Run: ``.venv/bin/python bench/ches.py [--pairs 16] [--max-length 192] [--runs 3] [--threads 1]``.
Details go to stderr; stdout gets ``name: value`` lines, the headline ``ratio`` last
(reference seconds / batched seconds).

Notes (latest run, 2026-12-02, SmolLM2-135M-Instruct fp32 on the 2 shared CPU cores, torch at
1 thread, load average 20.7 at the start falling to 6.9; no GPU in this session, so no GPU
figure yet):

- 16 HH-RLHF helpful-base pairs, max_length 192, 3,820 tokens (the prompt counted once per
  response; 1,115 prompt + 793 chosen + 797 rejected), batch_tokens 2048 (the CPU default).
- Three runs gave ratios 1.13 / 1.10 / 0.79: **median 1.10, spread 0.79..1.13**. Batched
  ~47 s = 0.34 pairs/s = 81 tokens/s; reference ~52 s = 0.31 pairs/s = 73 tokens/s. The
  load changed a lot during each run, which explains the spread more than the code does.
- Both paths agree to 2.3e-7 of max |ches|.
- On CPU, batching barely helps: the matmuls are already efficient at ~100-token sequences.
  The gain comes from calling the backbone (no 49k-vocabulary logits, ~20 % of the FLOPs),
  and padding takes part of it back. An earlier version put all 16 pairs in one padded
  8192-token batch and ran at **0.73x** (one run), which is why sequences are now
  length-sorted and CPU batches are small.
- Next step: run the shared prompt once (KV cache) for both responses. It would save 29 %
  of the tokens on these pairs. A GPU run (bf16, 32768-token batches) is where batching
  should pay off.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HH = Path(os.environ.get("ALIGNCRAFT_SHARED_DATA", REPO.parent / "shared" / "data")) / "preference" / "hh_rlhf_helpful_base_test.jsonl.gz"


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def load_pairs(n: int, max_length: int, tokenizer) -> tuple[list, list, list]:
    """The first ``n`` HH-RLHF pairs that split into a TRL pair and fit ``max_length``."""
    from filters.select.ches_pairs import trl_pair
    from filters.select.ches_states import encode_pairs
    from pipelines.errors import ParseError

    prompts, chosen, rejected = [], [], []
    with gzip.open(HH, "rt") as f:
        for line in f:
            r = json.loads(line)
            try:
                p, c, j = trl_pair(None, r["chosen"], r["rejected"])
            except ParseError:
                continue
            if encode_pairs(tokenizer, [p], [c], [j], max_length=max_length)["error"][0] is None:
                prompts.append(p)
                chosen.append(c)
                rejected.append(j)
            if len(prompts) == n:
                break
    return prompts, chosen, rejected


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--batch-tokens", type=int, default=None, help="default: the stage's (2048 on CPU, 32768 on CUDA)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 was fastest on the 2 shared cores)")
    ap.add_argument("--dtype", default="auto", help="auto = float32 on CPU, the model's dtype on CUDA")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import pyarrow as pa
    import torch

    from filters.select.ches import ChesFilter
    from filters.select.ches_states import encode_pairs, reference_pair_scores
    from pipelines.chat_format import MESSAGES

    torch.set_num_threads(args.threads)
    stage = ChesFilter(mode="drop_top", fraction=0.0, max_length=args.max_length, batch_tokens=args.batch_tokens, engine={"dtype": args.dtype})
    stage.load()
    llm = stage.engine_llm  # in this process: no engine pool outside a run
    prompts, chosen, rejected = load_pairs(args.pairs, args.max_length, llm.tokenizer)
    enc = encode_pairs(llm.tokenizer, prompts, chosen, rejected, max_length=args.max_length)
    tokens = sum(2 * len(p) + len(c) + len(r) for p, c, r in zip(enc["prompt"], enc["chosen"], enc["rejected"]))
    table = pa.table({"prompt": pa.array(prompts, MESSAGES), "chosen": pa.array(chosen, MESSAGES), "rejected": pa.array(rejected, MESSAGES)})
    log(f"{len(prompts)} HH-RLHF pairs, {tokens} tokens (prompt counted per response), max_length {args.max_length}, device {llm.device}, threads {args.threads}, load average {os.getloadavg()[0]:.1f}")
    stage.process(table.slice(0, 2))  # warm-up: first-call allocations

    runs = []
    for k in range(args.runs):
        t0 = time.perf_counter()
        kept, _ = stage.process(table)
        t_batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = np.array([reference_pair_scores(llm, p, c, r, max_length=args.max_length) for p, c, r in zip(prompts, chosen, rejected)])
        t_ref = time.perf_counter() - t0
        got = np.array(kept.column("ches").to_pylist())
        scale = np.abs(ref[:, 0]).max()
        runs.append({"batched_s": t_batched, "reference_s": t_ref, "ratio": t_ref / t_batched, "max_abs_diff_over_max_abs_ches": float(np.abs(got - ref[:, 0]).max() / scale), "load": os.getloadavg()[0]})
        log(f"run {k + 1}: batched {t_batched:.2f} s, reference {t_ref:.2f} s, ratio {t_ref / t_batched:.2f}, max |diff| / max |ches| {runs[-1]['max_abs_diff_over_max_abs_ches']:.1e}, load {runs[-1]['load']:.1f}")

    med = {key: statistics.median(r[key] for r in runs) for key in ("batched_s", "reference_s", "ratio")}
    ratios = [r["ratio"] for r in runs]
    n = len(prompts)
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "pairs": n, "tokens": tokens, "runs": runs, "median": med}, indent=1))
    print(f"batched_pairs_per_s: {n / med['batched_s']:.2f}")
    print(f"reference_pairs_per_s: {n / med['reference_s']:.2f}")
    print(f"batched_tokens_per_s: {tokens / med['batched_s']:.0f}")
    print(f"reference_tokens_per_s: {tokens / med['reference_s']:.0f}")
    print(f"ratio_spread: {min(ratios):.2f}..{max(ratios):.2f}")
    print(f"ratio: {med['ratio']:.2f}")


if __name__ == "__main__":
    main()
