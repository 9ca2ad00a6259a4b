"""``aligncraft run``."""
from __future__ import annotations

import os

import click

from pipelines.cli.options import set_option


@click.command("run")
@click.argument("recipe")
@click.option("--input", "input_path", type=click.Path(), help="Input file or folder (JSONL, JSON, CSV, parquet, a datasets folder) for recipes that read data.")
@set_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder [default: out/<recipe>]. Holds dataset/, data/*.parquet, rejected/, README.md (the card) and run/ (shards, manifest, log).")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N input rows (or generate N rows).")
@click.option("--fresh", is_flag=True, help="Discard earlier progress in --out instead of resuming.")
@click.option("--debug", is_flag=True, help="Run every stage in this process and show full tracebacks.")
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True, help="Worker processes for CPU stages running beside the LLM stages (0 = all in this process).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="local: this machine; ray: Ray Data (a local Ray instance, or the cluster at --ray-address). Same stages, same outputs.")
@click.option("--ray-address", metavar="auto|HOST:PORT", help="Join this Ray cluster (with --executor ray): 'auto' finds the one started on this node by `ray start`.")
@click.option("--push-to-hub", "push_to_hub", metavar="REPO", help="Also upload the dataset and card to this Hugging Face Hub dataset repo.")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs only).")
def cli(recipe: str, input_path: str | None, overrides: tuple[str, ...], out_dir: str | None, limit: int | None, fresh: bool, debug: bool, workers: int, executor: str, ray_address: str | None, push_to_hub: str | None, no_progress: bool) -> None:
    """Run RECIPE (a name from `aligncraft recipes` or a path to a YAML file).

    Rows flow through the recipe's stages in shards; every stage's output is saved as it
    finishes, so running the same command again after a crash or Ctrl-C resumes where it
    stopped. Rows a stage removes are kept under rejected/ with the reason.

    \b
    Examples:
      aligncraft run magpie-sft --set source.num_rows=200
      aligncraft run magpie-sft --set llm.model=meta-llama/Llama-3.1-8B-Instruct --out /data/magpie
      aligncraft run curate --input ../shared/data/seeds/alpaca_data_random5000.json
    """
    from pipelines.run import reproduce_command, run_recipe

    if ray_address and executor != "ray":
        raise click.BadParameter("needs --executor ray", param_hint="--ray-address")
    if debug:
        os.environ["ALIGNCRAFT_DEBUG"] = "1"
    command = reproduce_command(recipe, input_path=input_path, overrides=overrides, out_dir=out_dir, limit=limit)
    res = run_recipe(recipe, overrides=overrides, input_path=input_path, out_dir=out_dir, limit=limit, fresh=fresh, debug=debug, workers=workers, progress=not no_progress, push_to_hub=push_to_hub, command=command, executor=executor, ray_address=ray_address)
    rejected: dict[str, int] = {}
    for s in res.stages:
        for r, n in s["reasons"].items():
            rejected[f"{s['name']}:{r}"] = rejected.get(f"{s['name']}:{r}", 0) + n
    click.echo(f"dataset: {res.dataset_dir}  (parquet: {res.out_dir / 'data'}, card: {res.card})", err=True)
    click.echo(f"rows kept: {res.rows}   rows rejected: {sum(rejected.values())}" + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) + ")" if rejected else ""), err=True)
    click.echo(f"time: {res.seconds:.1f} s", err=True)
