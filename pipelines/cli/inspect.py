"""``aligncraft inspect``."""
from __future__ import annotations

import click


@click.command("inspect")
@click.argument("path", type=click.Path(exists=True))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True), default=None, help="Also write a self-contained HTML report (figures inlined) to this file.")
@click.option("--rows", "max_rows", default=15, show_default=True, type=click.IntRange(min=1), help="Rows shown per terminal table.")
def cli(path: str, html_path: str | None, max_rows: int) -> None:
    """Summarize PATH: an output folder, its run/ folder (also while the run is going), a
    save_to_disk folder, or a parquet, JSONL or CSV file.

    Shows rows per stage, rejected rows by stage and reason with examples, columns with
    types and nulls, tag counts, score summaries, constraint pass rates, judge ratings,
    chosen/rejected pairs, near-duplicate clusters and sample rows, whichever the data has.
    """
    import shutil
    import sys
    from pathlib import Path

    from rich.console import Console

    from pipelines.inspect import open_path
    from pipelines.report import html_report, terminal_tables

    ins = open_path(path)
    # a pipe or a test runner gets a wide console: column names stay whole
    width = None if sys.stdout.isatty() else max(120, shutil.get_terminal_size((120, 24)).columns)
    console = Console(file=sys.stdout, width=width, soft_wrap=False)
    for item in terminal_tables(ins, max_rows=max_rows):
        console.print(item)
    if html_path:
        Path(html_path).write_text(html_report(ins), encoding="utf-8")
        click.echo(f"report: {html_path}", err=True)
