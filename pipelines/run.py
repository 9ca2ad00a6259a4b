"""Run a recipe end to end: validate, execute durably, write the dataset and its card."""
from __future__ import annotations

import json
import logging
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ConfigError
from pipelines.executor import Executor, Step
from pipelines.pipeline import fingerprint, specs_from_recipe, stage_code_hash, validate
from pipelines.recipe import load_recipe
from pipelines.run_store import StageDir, atomic_write_bytes, merge_stats
from pipelines.source import Source

log = logging.getLogger("aligncraft")
LOCK_NAME = ".aligncraft.lock"  # in --out, beside run/: --fresh removes run/, never the lock


def reproduce_command(recipe_name: str, *, input_path: str | None = None, overrides: tuple[str, ...] | list[str] = (), out_dir: str | Path | None = None, limit: int | None = None) -> str:
    """The ``aligncraft run`` line that makes this dataset again, for the card.

    Built from the run's own arguments, never from ``sys.argv`` (through the Python API
    that is the calling program's command line, e.g. ``pytest -q -x tests``).

    >>> reproduce_command("curate", input_path="my data.jsonl", overrides=("select.budget=50",), limit=100)
    "aligncraft run curate --input 'my data.jsonl' --set select.budget=50 --limit 100"
    """
    args = ["aligncraft", "run", str(recipe_name)] + (["--input", str(input_path)] if input_path else [])
    for o in overrides:
        args += ["--set", o]
    args += (["--out", str(out_dir)] if out_dir else []) + (["--limit", str(limit)] if limit else [])
    return " ".join(shlex.quote(a) for a in args)


def take_lock(out: Path):
    """Hold ``<out>/.aligncraft.lock`` or fail at once: one run per output folder."""
    from filelock import FileLock, Timeout

    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ConfigError(f"another aligncraft run is using {out}", hint="wait for it to finish, or use another --out") from None
    return lock


@dataclass
class RunResult:
    out_dir: Path
    dataset_dir: Path
    rows: int
    stages: list[dict[str, Any]]
    seconds: float
    card: Path


def run_recipe(recipe_name: str, *, overrides: tuple[str, ...] = (), input_path: str | None = None, out_dir: str | Path | None = None, limit: int | None = None, fresh: bool = False, debug: bool = False, workers: int = 1, progress: bool = True, push_to_hub: str | None = None, command: str | None = None, executor: str = "local", ray_address: str | None = None) -> RunResult:
    t0 = time.time()
    recipe = load_recipe(recipe_name, overrides)
    name = recipe["name"]
    out = Path(out_dir or Path("out") / name)
    run_dir = out / "run"
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    if executor not in ("local", "ray"):
        raise ConfigError(f"executor must be 'local' or 'ray', got {executor!r}")
    # -- validate everything before any model loads --------------------------------------------
    source = Source(recipe.get("source") or {}, seed=int(recipe["seed"]), input_path=input_path, limit=limit)
    specs = specs_from_recipe(recipe)
    built = [(spec, spec.build()) for spec in specs]
    source_table = source.table()
    validate(built, source_table.schema, source=source)
    # -- run directory: lock first, then (--fresh) clear what is under it ----------------
    lock = take_lock(out)
    try:
        if fresh:
            shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
    except BaseException:
        lock.release()
        raise
    handler = logging.FileHandler(run_dir / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:  # the handler and the lock are released in the finally below
        command = command or reproduce_command(recipe_name, input_path=input_path, overrides=overrides, out_dir=out_dir, limit=limit)
        atomic_write_bytes(run_dir / "config.yaml", yaml.safe_dump({"recipe": recipe, "input": input_path, "limit": limit, "command": command}, sort_keys=False).encode())
        batch_size = int(recipe["batch_size"])
        up = source.fingerprint()
        steps = []
        for idx, (spec, stage) in enumerate(built):
            fp = fingerprint(spec, stage.version, up, batch_size, code=stage_code_hash(stage))
            steps.append(Step(idx, spec, stage, StageDir(run_dir, idx, spec.name, fp)))
            up = fp
        log.info("run %s: %s, %d stages, batch_size %d, run dir %s", name, source.describe(), len(steps), batch_size, run_dir)

        def write_manifest(status: str) -> None:
            manifest = {
                "recipe": name,
                "status": status,
                "source": {"description": source.describe(), "rows": source_table.num_rows, "fingerprint": source.fingerprint()},
                "stages": [{"name": s.spec.name, "type": s.spec.type, "fingerprint": s.dir.fp, "dir": str(s.dir.path.relative_to(run_dir)), **merge_stats(s.dir.stats())} for s in steps],
            }
            atomic_write_bytes(run_dir / "manifest.json", json.dumps(manifest, indent=1).encode())

        write_manifest("running")
        if executor == "ray":  # same steps and run-store layout, on a Ray cluster
            from pipelines.executor_ray import RayExecutor

            runner = RayExecutor(steps, batch_size=batch_size, address=ray_address, progress=progress, on_stage_done=lambda s: write_manifest("running"))
        else:
            runner = Executor(steps, batch_size=batch_size, workers=workers, debug=debug, progress=progress, on_stage_done=lambda s: write_manifest("running"), log_path=str(run_dir / "log.txt"))
        last = runner.run(source_table)
        write_manifest("complete")
        from pipelines.output import write_output

        stage_rows = [{"name": s.spec.name, "type": s.spec.type, "params": s.stage.params, "models": s.stage.models(), "needs_llm": s.stage.needs_llm, **merge_stats(s.dir.stats())} for s in steps]
        result = write_output(out, recipe=recipe, final=last, steps=steps, stage_rows=stage_rows, source=source, command=command, seconds=time.time() - t0)
        if push_to_hub:
            from pipelines.output import push_to_hub as push

            push(out, push_to_hub)
        return RunResult(out, result["dataset_dir"], result["rows"], stage_rows, time.time() - t0, result["card"])
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        lock.release()
