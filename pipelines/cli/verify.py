"""``aligncraft verify``: IFEval verdicts for a file of responses.

Only wiring: reading, matching and checking live in :mod:`filters.verify.ifeval.evaluate`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from pipelines.errors import AligncraftError

_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@click.command(name="verify")
@click.option("--prompts", "prompts_path", type=_FILE, required=True, help="IFEval prompts JSONL (key, prompt, instruction_id_list, kwargs).")
@click.option("--responses", "responses_path", type=_FILE, required=True, help="Responses JSONL (prompt, response), matched by exact prompt text.")
@click.option("--mode", type=click.Choice(["strict", "loose"]), default="strict", show_default=True, help="IFEval strict or loose verdicts.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None, help="Write results JSONL here (default: stdout).")
def cli(prompts_path: Path, responses_path: Path, mode: str, out_path: Path | None) -> None:
    """Check responses against IFEval instructions, as Google's reference evaluator does.

    Writes one JSON line per prompt (prompt, response, instruction_id_list,
    follow_instruction_list, follow_all_instructions) to --out or stdout, and prints
    prompt-level and instruction-level accuracy and a per-instruction table to stderr.
    """
    from filters.verify.ifeval.evaluate import (
        evaluate,
        format_report,
        read_prompts,
        read_responses,
        summarize,
    )
    from filters.verify.ifeval.records import write_results

    try:
        prompts = read_prompts(prompts_path)
        responses = read_responses(responses_path)
        results = evaluate(prompts, responses, mode=mode, prompts_path=prompts_path, responses_path=responses_path)  # type: ignore[arg-type]
    except AligncraftError as e:
        error = click.ClickException(e.format_message())
        error.exit_code = e.exit_code
        raise error from None
    if out_path is None:
        write_results(results, sys.stdout)
    else:
        with out_path.open("w", encoding="utf-8") as f:
            write_results(results, f)
    click.echo(format_report(summarize(results), mode=mode), err=True)
