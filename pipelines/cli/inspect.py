"""``aligncraft inspect``."""
from __future__ import annotations

import click


@click.command("inspect")
@click.argument("dataset", type=click.Path(exists=True))
@click.option("--rows", "n_rows", default=3, show_default=True, help="Example rows to print.")
def cli(dataset: str, n_rows: int) -> None:
    """Summarize DATASET (an output folder, a save_to_disk folder, a parquet or JSONL file):
    row count, columns with types and null counts, tag distributions, score summaries."""
    from pipelines.inspect import summarize

    click.echo(summarize(dataset, n_rows=n_rows))
