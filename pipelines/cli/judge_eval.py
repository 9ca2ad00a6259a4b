"""``aligncraft judge-eval``: a judge's agreement with human labels and its position consistency.

Only wiring: sets, protocol and metrics live in :mod:`synth.judge.agreement`.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from pipelines.errors import AligncraftError


def _sets(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    from synth.judge.agreement import SETS

    names = [v.strip() for v in value.split(",") if v.strip()] if value != "all" else list(SETS)
    bad = [n for n in names if n not in SETS]
    if bad or not names:
        raise click.BadParameter(f"unknown set(s) {', '.join(bad) or '(none)'}; choose from all, {', '.join(SETS)}")
    return names


def _aspects(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    from synth.judge.ultrafeedback.templates import ASPECTS

    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in ASPECTS]
    if bad or not names:
        raise click.BadParameter(f"unknown aspect(s) {', '.join(bad) or '(none)'}; choose from {', '.join(ASPECTS)}")
    return names


@click.command(name="judge-eval")
@click.option("--judge", "judge", required=True, metavar="MODEL", help="Judge model: 'default' (SmolLM2), a local folder or a hub id.")
@click.option("--backend", type=click.Choice(["vllm", "transformers", "openai"]), default=None, help="LLM backend [default: vllm if installed].")
@click.option("--base-url", default=None, help="OpenAI-compatible server URL (with --backend openai).")
@click.option("--sets", "sets", default="all", show_default=True, callback=_sets, help="Comma-separated sets: llmbar_natural, llmbar_neighbor, llmbar_gptinst, llmbar_gptout, llmbar_manual, mt_bench, pandalm.")
@click.option("--sample", type=click.IntRange(min=1), default=None, help="Judge a seeded random sample of N pairs per set [default: all].")
@click.option("--aspects", default="instruction_following,honesty,truthfulness,helpfulness", show_default=True, callback=_aspects, help="UltraFeedback aspects to rate; the preference is the higher mean rating.")
@click.option("--structured", type=click.Choice(["auto", "none", "json", "regex"]), default="auto", show_default=True, help="Constrain replies: regex (the reference's text format) or a JSON schema; auto = regex on vllm, none otherwise.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=500, show_default=True, help="Judge reply budget (the reference: 500).")
@click.option("--rationale-chars", type=click.IntRange(min=1), default=400, show_default=True, help="Longest rationale under --structured json/regex.")
@click.option("--max-model-len", type=click.IntRange(min=256), default=4096, show_default=True, help="Engine context length (vllm).")
@click.option("--max-retries", type=click.IntRange(min=0), default=3, show_default=True, help="Re-asks for an unparseable reply.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --sample.")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None, help="The judge_agreement folder [default: ../shared/data/judge_agreement or $ALIGNCRAFT_SHARED_DATA/judge_agreement].")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("out/judge-eval.json"), show_default=True, help="Where the JSON results go.")
def cli(judge: str, backend: str | None, base_url: str | None, sets: list[str], sample: int | None, aspects: list[str], structured: str, max_tokens: int, rationale_chars: int,
        max_model_len: int, max_retries: int, seed: int, data_dir: Path | None, out_path: Path) -> None:
    """Measure a judge against human preference labels, in both output orders.

    Each pair is rated with the UltraFeedback aspect prompts (both outputs in one call per
    aspect), once as given and once swapped; the judge prefers the higher mean rating.
    Prints accuracy per order, their average, right-in-both-orders and position consistency
    per set, with the published GPT-4 (LLMBar) and gpt-3.5-turbo (PandaLM) figures beside
    them, and writes everything to --out as JSON.

    \b
    Examples:
      aligncraft judge-eval --judge default --sample 20
      aligncraft judge-eval --judge meta-llama/Llama-3.1-8B-Instruct --sets llmbar_natural,mt_bench
    """
    from synth.backends.llm import default_backend
    from synth.judge.agreement import (
        default_data_dir,
        evaluate,
        format_table,
        reference_figures,
    )
    from synth.judge.ultrafeedback.annotate import UFRate

    root = data_dir or default_data_dir()
    chosen_backend = backend or default_backend()
    mode = {"auto": "regex" if chosen_backend == "vllm" else False, "none": False}.get(structured, structured)
    engine: dict[str, object] = {"base_url": base_url} if base_url else {}
    if chosen_backend == "vllm":
        engine["max_model_len"] = max_model_len
    try:
        stage = UFRate(model=judge, backend=chosen_backend, engine=engine, aspects=aspects, shuffle=False, structured=mode, rationale_chars=rationale_chars,
                       max_retries=max_retries, sampling={"max_tokens": max_tokens}, seed=seed)
        reference = reference_figures(root)
        click.echo(f"judging {len(sets)} set(s) with {judge} ({chosen_backend}, aspects: {', '.join(aspects)}, structured: {mode or 'none'})", err=True)
        stage.load()
        results = evaluate(stage, root, sets, sample=sample, seed=seed)
    except AligncraftError as e:
        error = click.ClickException(e.format_message())
        error.exit_code = e.exit_code
        raise error from None
    report = {"judge": judge, "backend": chosen_backend, "aspects": aspects, "structured": mode or "none", "sample": sample, "seed": seed, **results, "reference": reference}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1))
    click.echo(format_table(results, reference, judge))
    click.echo(f"results: {out_path}", err=True)
