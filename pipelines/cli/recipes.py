"""``aligncraft recipes``."""
from __future__ import annotations

import click


def stage_location(stage: str) -> str:
    """Where a recipe's ``stage:`` lives, as ``module:Class``, read from the registry table
    without importing the stage (a ``package.module:Class`` name is its own location).

    >>> stage_location("minhash_dedup")
    'filters.dedup.minhash:MinHashDedup'
    >>> stage_location("my_pkg.stages:Mine"), stage_location("nope")
    ('my_pkg.stages:Mine', '(unknown stage)')
    """
    from pipelines.registry import STAGES

    if ":" in stage:
        return stage
    return STAGES.get(stage, "(unknown stage)")


def recipe_stages(name: str) -> list[tuple[str, str, str]]:
    """``(step name, stage name, module:Class)`` for each stage of a built-in recipe, in order."""
    import yaml

    from pipelines.recipe import recipe_path

    steps = (yaml.safe_load(recipe_path(name).read_text()) or {}).get("stages") or []
    out = []
    for step in steps:
        if isinstance(step, dict):
            stage = str(step.get("stage", "?"))
            out.append((str(step.get("name", stage)), stage, stage_location(stage)))
    return out


def _known_recipes(ctx: click.Context, param: click.Parameter, names: tuple[str, ...]) -> tuple[str, ...]:
    from pipelines.recipe import list_recipes

    known = list_recipes()
    unknown = [n for n in names if n not in known]
    if unknown:
        msg = f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(known)}"
        raise click.BadParameter(msg, ctx=ctx, param=param)
    return names


@click.command("recipes")
@click.argument("names", nargs=-1, callback=_known_recipes)
@click.option("--brief", is_flag=True, help="Only the one-line descriptions, no stages.")
def cli(names: tuple[str, ...], brief: bool) -> None:
    """List the built-in recipes with a one-line description each and, under it, every stage:
    its name in the recipe, its stage type and the module and class that implement it.

    NAMES limits the list to those recipes.
    """
    from pipelines.recipe import list_recipes

    items = list_recipes()
    if names:
        items = {n: items[n] for n in names}
    width = max((len(n) for n in items), default=0)
    for name, desc in items.items():
        click.echo(f"{name:<{width}}  {desc}")
        if brief:
            continue
        try:
            steps = recipe_stages(name)
        except Exception as exc:  # noqa: BLE001 - an unreadable recipe is already flagged by list_recipes
            click.echo(f"    (cannot read its stages: {exc})")
            continue
        w_step = max((len(s) for s, _, _ in steps), default=0)
        w_stage = max((len(t) for _, t, _ in steps), default=0)
        for step, stage, where in steps:
            click.echo(f"    {step:<{w_step}}  {stage:<{w_stage}}  {where}")
