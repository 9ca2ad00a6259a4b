"""``aligncraft refresh``."""
from __future__ import annotations

import os

import click

from pipelines.cli.options import set_option


@click.command("refresh")
@click.argument("recipe")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True), help="Input file or folder, read whole each time (JSONL, JSON, CSV, parquet, a datasets folder); rows seen by an earlier version are skipped.")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False), help="The history folder: versions/<dated>/, latest -> the newest, the signatures of every release, the lock.")
@set_option
@click.option("--version", "version", metavar="NAME", help="Name of the new version folder [default: UTC date and time, e.g. 2025-06-01T031500Z].")
@click.option("--dedup-column", metavar="COLUMN", help="Output column compared with earlier releases [default: prompt, instruction, messages or text, whichever the output has; fixed by the first version].")
@click.option("--threshold", type=click.FloatRange(min=0.0, max=1.0, min_open=True), help="Estimated Jaccard similarity at or above which a new row duplicates an earlier release [default: 0.7].")
@click.option("--debug", is_flag=True, help="Run every stage in this process and show full tracebacks.")
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True, help="Worker processes for CPU stages (0 = all in this process).")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs only).")
def cli(recipe: str, input_path: str, state_dir: str, overrides: tuple[str, ...], version: str | None, dedup_column: str | None, threshold: float | None, debug: bool, workers: int, no_progress: bool) -> None:
    """Add a new dated version of RECIPE's output to --state, made from the rows of --input
    that no earlier version has seen (for cron).

    Takes a lock (a second refresh on the same --state exits at once with code 75), runs the
    recipe on the new rows only, drops rows that are near-duplicates of any earlier release
    (by MinHash signatures kept in the state), writes versions/<date>/ with a card saying
    what was added and what was dropped, and then points latest at it. With nothing new it
    prints "nothing new" and exits 0. A refresh killed at any moment is finished by the next
    one, under the same version name; latest always names a complete version.

    \b
    Examples:
      aligncraft refresh ultrafeedback-prefs --input prompts/ --state /data/uf-prefs
      aligncraft refresh curate --input sft.jsonl --state /data/sft --set select.budget=500
    """
    from pipelines.refresh import refresh, refresh_command

    if debug:
        os.environ["ALIGNCRAFT_DEBUG"] = "1"
    command = refresh_command(recipe, input_path=input_path, state_dir=state_dir, overrides=overrides)
    results = refresh(recipe, input_path=input_path, state_dir=state_dir, overrides=overrides, version=version, dedup_column=dedup_column, threshold=threshold, workers=workers, debug=debug, progress=not no_progress, command=command)
    for res in results:
        click.echo(res.message, err=True)
        if res.version:
            click.echo(f"latest: {res.state_dir / 'latest'} -> versions/{res.version}  (card: {res.state_dir / 'versions' / res.version / 'README.md'})", err=True)
