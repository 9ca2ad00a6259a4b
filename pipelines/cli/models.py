"""``aligncraft models``."""
from __future__ import annotations

import click


@click.group("models")
def cli() -> None:
    """The embedded default models (SmolLM2-135M-Instruct for chat, MiniLM for embeddings)."""


@cli.command("prepare")
@click.option("--force", is_flag=True, help="Convert again even if the cached folder is valid.")
def prepare(force: bool) -> None:
    """Convert the embedded SmolLM2 GGUF into a cached HF model folder (once, checksummed)."""
    from synth.backends.models import default_embedder_path, prepare_default_model

    click.echo(f"chat model (default): {prepare_default_model(force=force)}")
    click.echo(f"embedding model (default): {default_embedder_path()}")


@cli.command("path")
def path() -> None:
    """Print the cached default chat model folder (prepares it if needed)."""
    from synth.backends.models import prepare_default_model

    click.echo(str(prepare_default_model()))
