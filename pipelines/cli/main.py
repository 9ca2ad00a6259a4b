"""The ``aligncraft`` command. Subcommands live one per module and import only when used,
so ``aligncraft --help`` stays fast and loads no model library."""
from __future__ import annotations

import importlib
import logging
import os
import sys

import click

SUBCOMMANDS = {
    "run": ("pipelines.cli.run", "Run a recipe and write a Hugging Face dataset with its card."),
    "recipes": ("pipelines.cli.recipes", "List the recipes and where each of their stages lives."),
    "inspect": ("pipelines.cli.inspect", "Summarize a dataset: rows, columns, distributions."),
    "models": ("pipelines.cli.models", "Prepare and show the embedded default models."),
    "verify": ("pipelines.cli.verify", "Check responses against IFEval-style constraints."),
    "judge-eval": ("pipelines.cli.judge_eval", "A judge's agreement with human preference labels and its position consistency (LLMBar, MT-Bench, PandaLM)."),
    "crr": ("pipelines.cli.crr", "Capacity Recovery Ratio of two answer files (CodecLM, both-order judging)."),
    "refresh": ("pipelines.cli.refresh", "Add a dated version of a recipe's output made from new inputs only (cron)."),
}


class UserError(click.ClickException):
    """An AligncraftError shown as click shows its own: one ``Error: ...`` line, its exit code."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(exc.format_message())  # type: ignore[attr-defined]
        self.exit_code = exc.exit_code  # type: ignore[attr-defined]
        self.cause = exc


def storage_error(exc: OSError) -> Exception | None:
    """An ``AligncraftError`` (exit 74, ``EX_IOERR``) naming the file for a full disk or an
    unwritable folder; None for other OS errors (bugs keep their traceback)."""
    import errno

    from pipelines.errors import AligncraftError

    full = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if exc.errno not in (*full, errno.EROFS, errno.EACCES, errno.EPERM):
        return None
    hint = "free some space, or use another --out/--state; " if exc.errno in full else "make the folder writable, or use another --out/--state; "
    err = AligncraftError(f"{exc.strerror}: {exc.filename or _path_in_traceback(exc) or 'writing a file'}", hint=hint + "finished work is kept, so the same command then resumes")
    err.exit_code = 74
    return err


def _path_in_traceback(exc: BaseException) -> str | None:
    """The path the innermost frame was writing (``write()`` errors carry no file name)."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        for name in ("tmp", "path", "dst", "dataset_path"):
            v = tb.tb_frame.f_locals.get(name)
            if isinstance(v, (str, os.PathLike)):
                found = os.fspath(v)
                break
        tb = tb.tb_next
    return found


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        from pipelines.errors import AligncraftError

        try:
            return super().invoke(ctx)
        except AligncraftError as exc:
            if os.environ.get("ALIGNCRAFT_DEBUG") and getattr(exc, "traceback", None):
                click.echo(exc.traceback, err=True)
            raise UserError(exc) from exc
        except OSError as exc:  # a full disk or a read-only folder is the machine's state, not a bug
            err = storage_error(exc)
            if err is None:
                raise
            raise UserError(err) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        return importlib.import_module(SUBCOMMANDS[name][0]).cli

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(n, SUBCOMMANDS[n][1]) for n in sorted(SUBCOMMANDS)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="More log output (DEBUG level).")
@click.version_option(package_name="aligncraft")
def cli(verbose: bool) -> None:
    """aligncraft: synthesize and curate alignment data (SFT conversations and preference
    pairs) as Hugging Face datasets.

    \b
    Typical use:
      aligncraft recipes                          # what can I run?
      aligncraft run magpie-sft --set source.num_rows=200
      aligncraft run curate --input my_sft.jsonl --set select.budget=6000
      aligncraft inspect out/magpie-sft
      aligncraft verify --prompts input.jsonl --responses responses.jsonl

    A killed run resumes when you run the same command again.
    """
    # the terminal shows warnings, progress bars and the summary; the run's log.txt gets INFO
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s", handlers=[console])
    for noisy in ("vllm", "httpx", "datasets", "urllib3", "filelock", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)


def main() -> None:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    from pipelines.errors import AligncraftError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AligncraftError as exc:  # raised outside a subcommand
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
