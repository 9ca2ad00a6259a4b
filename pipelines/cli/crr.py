"""``aligncraft crr``: CodecLM's Capacity Recovery Ratio of two answer files.

Only wiring: the metric lives in :mod:`synth.codeclm.crr`.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

_FILE = click.Path(exists=True, readable=True, path_type=Path)  # a file, or an output folder of `aligncraft run`


@click.command(name="crr")
@click.option("--judge", "judge_model", required=True, help="Judge model: 'default', a local folder, a hub id, or a server's model name.")
@click.option("--a", "a_path", type=_FILE, required=True, help="Answers of the model evaluated (the target): instruction/response JSONL, parquet, or an `aligncraft run` output folder.")
@click.option("--b", "b_path", type=_FILE, required=True, help="Answers of the reference (the strong model), same prompts.")
@click.option("--backend", type=click.Choice(["vllm", "transformers", "openai"]), default=None, help="Judge backend (default: vllm when installed).")
@click.option("--max-model-len", type=click.IntRange(min=256), default=4096, show_default=True, help="Judge context length (vllm, transformers).")
@click.option("--base-url", default=None, help="OpenAI-compatible server URL (--backend openai).")
@click.option("--structured/--no-structured", default=False, show_default=True, help="Constrain the judge to 'N N' (engines with structured output; small judges need it).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None, help="Write per-prompt verdicts JSONL here.")
def cli(judge_model: str, a_path: Path, b_path: Path, backend: str | None, max_model_len: int, base_url: str | None, structured: bool, out_path: Path | None) -> None:
    """Capacity Recovery Ratio of A against B: (A's wins + ties) / prompts judged.

    Every prompt is judged with Vicuna's pairwise prompt twice, A first and B first; a side
    wins only if it wins both orders (CodecLM, Wang et al. 2024). Counts go to stderr; the
    last line on stdout is `crr: <ratio>`.
    """
    from synth.backends.llm import get_llm
    from synth.codeclm.crr import judge_crr, match_answers, read_answers

    triples = match_answers(read_answers(a_path), read_answers(b_path), a_path=str(a_path), b_path=str(b_path))
    options = {"base_url": base_url} if backend == "openai" else {"max_model_len": max_model_len}
    llm = get_llm(backend, judge_model, **{k: v for k, v in options.items() if v is not None})
    result = judge_crr(llm, triples, structured=structured)
    if out_path is not None:
        with out_path.open("w", encoding="utf-8") as f:
            for row in result["rows"]:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    click.echo(f"prompts {len(triples)}, judged {result['judged']}, unparsed {result['unparsed']}: A wins {result['wins']}, ties {result['ties']}, B wins {result['losses']}", err=True)
    click.echo(f"crr: {result['crr']:.4f}")
