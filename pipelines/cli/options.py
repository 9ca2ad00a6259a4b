"""Options shared by several commands."""
from __future__ import annotations

import click


def _check_set(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{item}' is not key=value (e.g. --set generate.temperature=0.7)")
    return value


set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", callback=_check_set,
    help="Override a recipe value: stage.param=value, llm.model=PATH, source.num_rows=N, batch_size=N. Repeatable; values are YAML.",
)
