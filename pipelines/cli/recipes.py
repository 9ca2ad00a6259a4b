"""``aligncraft recipes``."""
from __future__ import annotations

import click


@click.command("recipes")
def cli() -> None:
    """List the built-in recipes with a one-line description each."""
    from pipelines.recipe import list_recipes

    items = list_recipes()
    width = max((len(n) for n in items), default=0)
    for name, desc in items.items():
        click.echo(f"{name:<{width}}  {desc}")
