"""``aligncraft refresh``: a recipe's output as dated releases, grown from new inputs only.

One refresh (from cron, say):

1. takes ``STATE/.refresh.lock`` or exits at once (:class:`~pipelines.refresh_state.RefreshBusyError`, exit 75);
2. loads and checks the state (:func:`~pipelines.refresh_state.load_state`); a version a
   killed refresh left half-made in ``work/`` is finished first, under its own name;
3. reads the input, gives each row its content id, and keeps the rows no earlier version
   consumed (nothing left: "nothing new", exit 0, nothing written);
4. runs the recipe on those rows with :func:`pipelines.run.run_recipe` in ``work/out``
   (durable shards: a killed refresh resumes the run where it stopped);
5. drops output rows that are near-duplicates of any earlier release, by the MinHash
   signatures kept in the state (:mod:`pipelines.refresh_dedup`), or whose id was released;
6. assembles ``versions/V`` (cumulative ``data/``, hard links to earlier versions' files plus
   this version's own, rejected rows, a card saying what was added and what was dropped),
   lists it in ``state.json`` and then switches ``latest`` to it.

See :mod:`pipelines.refresh_state` for the layout and why a kill at any moment leaves
``latest`` on a complete version and the next refresh makes the same version.
"""
from __future__ import annotations

import json
import logging
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.errors import ConfigError
from pipelines.recipe import RECIPES_DIR, load_recipe, recipe_path
from pipelines.refresh_dedup import DEFAULTS, release_matches, row_signatures, text_column
from pipelines.refresh_state import (State, _fail, file_sha256, input_content_ids, is_seen, latest_target, link_or_copy, load_state, read_pending,
                                     replace_dir, switch_latest, take_refresh_lock, utc_now, version_name)
from pipelines.run_store import atomic_write_bytes, atomic_write_table
from pipelines.stage import split_by_reason

log = logging.getLogger("aligncraft")
FIXED = ("shingle", "ngram", "num_perm", "seed")  # near-dup settings the stored signatures depend on


@dataclass
class RefreshResult:
    state_dir: Path
    version: str | None  # None: nothing new
    summary: dict[str, Any]
    message: str


def refresh_command(recipe: str, *, input_path: str, state_dir: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> str:
    """The command line that makes the next version, for the card.

    >>> refresh_command("ultrafeedback-prefs", input_path="prompts/", state_dir="/data/uf", overrides=("pool_a.sampling.max_tokens=64",))
    'aligncraft refresh ultrafeedback-prefs --input prompts/ --state /data/uf --set pool_a.sampling.max_tokens=64'
    """
    args = ["aligncraft", "refresh", recipe, "--input", str(input_path), "--state", str(state_dir)]
    for o in overrides:
        args += ["--set", o]
    return " ".join(shlex.quote(a) for a in args)


def refresh(recipe_name: str, *, input_path: str | Path, state_dir: str | Path, overrides: tuple[str, ...] = (), version: str | None = None, dedup_column: str | None = None, threshold: float | None = None,
            workers: int = 1, debug: bool = False, progress: bool = True, command: str | None = None) -> list[RefreshResult]:
    """Make the next version of ``recipe_name`` in ``state_dir`` from the new rows of ``input_path``.

    Parameters
    ----------
    recipe_name
        A recipe that reads inputs (``source: {type: input}``), by name or YAML path.
    input_path
        A file or folder (every file in it), read whole each time; rows seen before are skipped.
    state_dir
        The history: versions, ``latest``, the stored signatures, the lock.
    version
        Name of the new version folder (default: the UTC date and time, ``2025-06-01T031500Z``).
    dedup_column, threshold
        Near-duplicates across releases: compared column (default the first of ``prompt``,
        ``instruction``, ``messages``, ``text``; fixed by the first version) and the
        estimated Jaccard similarity at or above which a new row is dropped (default 0.7).

    Returns
    -------
    list of RefreshResult
        The versions made (a version a killed refresh left half-made comes first), or one
        result with ``version=None``: nothing new.
    """
    if threshold is not None and not 0.0 < float(threshold) <= 1.0:
        raise ConfigError(f"--threshold is a Jaccard similarity in (0, 1], got {threshold}")
    root = Path(state_dir).absolute()
    recipe = load_recipe(recipe_name, overrides)  # a bad recipe or --set fails before the lock
    if (recipe.get("source") or {}).get("type", "input") != "input":
        msg = f"refresh needs a recipe that reads inputs (source type 'input'); '{recipe['name']}' generates its rows"
        raise ConfigError(msg, hint="refresh ultrafeedback-prefs, act-prefs or curate, or your own recipe with source: {type: input}")
    if not Path(input_path).exists():
        raise ConfigError(f"--input {input_path}: no such file or folder")
    path = recipe_path(recipe_name)
    recipe_ref = recipe_name if path.parent.resolve() == RECIPES_DIR.resolve() else str(path.resolve())
    lock = take_refresh_lock(root)
    try:
        state = load_state(root, recipe=recipe["name"])
        state.recipe = recipe["name"]
        results = []
        pending = read_pending(root)
        if pending is not None:
            log.warning("finishing version %s, which an interrupted refresh left in %s", pending["version"], root / "work")
            results.append(finish_pending(state, pending, workers=workers, debug=debug, progress=progress))
            state = load_state(root, recipe=recipe["name"])
        elif state.latest and latest_target(root) != state.latest:
            switch_latest(root, state.latest)  # killed between the commit and the switch
        new = start_pending(state, recipe_ref, input_path=str(input_path), overrides=tuple(overrides), version=version, dedup_column=dedup_column, threshold=threshold,
                            command=command or refresh_command(recipe_name, input_path=str(input_path), state_dir=state_dir, overrides=overrides))
        if new is None:
            if results:
                return results
            return [RefreshResult(root, None, {}, f"nothing new: every row of {input_path} was seen by an earlier version (latest: {state.latest or 'none'})")]
        results.append(finish_pending(state, new, workers=workers, debug=debug, progress=progress))
        return results
    finally:
        lock.release()


def start_pending(state: State, recipe_ref: str, *, input_path: str, overrides: tuple[str, ...], version: str | None, dedup_column: str | None, threshold: float | None, command: str) -> dict[str, Any] | None:
    """Pick the new input rows and write ``work/`` (their table, then ``pending.json``); None if
    there are none. The version name is fixed here, so a resumed refresh keeps it."""
    from pipelines.inputs import read_input

    root = state.root
    raw = read_input(input_path)
    ids = input_content_ids(raw)
    import polars as pl

    first = pa.array(pl.Series(ids).is_first_distinct().to_numpy())
    seen = is_seen(ids, state.seen_ids())
    new_mask = pc.and_(first, pc.invert(seen))
    n_new = pc.sum(new_mask).as_py() or 0
    if n_new == 0:
        return None
    near = {**DEFAULTS, **{k: state.near_dup[k] for k in (*FIXED, "column", "threshold") if state.near_dup.get(k) is not None}}
    if dedup_column:
        if state.near_dup.get("column") not in (None, dedup_column):
            msg = f"{root} compares releases on '{state.near_dup['column']}', not '{dedup_column}' (the stored signatures are of that column)"
            raise ConfigError(msg, hint="drop --dedup-column, or start a new history with another --state")
        near["column"] = dedup_column
    if threshold is not None:
        near["threshold"] = float(threshold)
    name = version or version_name()
    existing = {v["name"] for v in state.versions}
    if version and version in existing:
        raise ConfigError(f"version '{version}' already exists in {root}", hint="give another --version, or leave it out for a dated name")
    base, k = name, 2
    while name in existing:
        name, k = f"{base}.{k}", k + 1
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    atomic_write_table(work / "input.parquet", raw.filter(new_mask))
    atomic_write_table(work / "inputs.parquet", pa.table({"id": ids.filter(new_mask)}))
    pending = {
        "version": name, "created": utc_now(), "recipe": recipe_ref, "overrides": list(overrides), "input": input_path, "command": command, "near_dup": near,
        # a partition of the rows read: seen before (repeats too), repeating a new row, new
        "inputs": {"read": raw.num_rows, "already_seen": int(pc.sum(seen).as_py() or 0), "repeated": int(raw.num_rows - (pc.sum(seen).as_py() or 0) - n_new), "new": int(n_new)},
        "input_sha256": file_sha256(work / "input.parquet"), "inputs_sha256": file_sha256(work / "inputs.parquet"),
    }
    atomic_write_bytes(work / "pending.json", json.dumps(pending, indent=1).encode())
    log.info("refresh %s: %d new input rows of %d (%d seen before) -> version %s", state.recipe, n_new, raw.num_rows, pending["inputs"]["already_seen"], name)
    return pending


def finish_pending(state: State, pending: dict[str, Any], *, workers: int, debug: bool, progress: bool) -> RefreshResult:
    """Run, dedup against earlier releases, assemble, commit and point ``latest`` at the version."""
    from pipelines.run import run_recipe

    root, work, name = state.root, state.root / "work", pending["version"]
    if name in {v["name"] for v in state.versions}:  # committed: only the pointer and work/ remain
        switch_latest(root, name)
        clear_work(work)
        summary = json.loads((state.version_dir(name) / "refresh.json").read_text())
        return RefreshResult(root, name, summary, describe(summary))
    for f, key in (("input.parquet", "input_sha256"), ("inputs.parquet", "inputs_sha256")):
        if not (work / f).is_file() or file_sha256(work / f) != pending.get(key):
            raise _fail(root, f"{work / f} is missing or does not match pending.json")
    run = run_recipe(pending["recipe"], overrides=tuple(pending["overrides"]), input_path=str(work / "input.parquet"), out_dir=work / "out", workers=workers, debug=debug, progress=progress, command=pending["command"])
    final = pq.read_table(run.out_dir / "data" / "train-00000-of-00001.parquet")
    near = dict(pending["near_dup"])
    kept, dropped, sig = drop_released(state, final, near)
    summary = {
        "version": name, "previous": state.latest, "created": pending["created"], "recipe": state.recipe, "input": pending["input"], "command": pending["command"], "overrides": pending["overrides"],
        "inputs": pending["inputs"],
        "run": {"rows_in": pending["inputs"]["new"], "kept": final.num_rows, "rejected": {f"{s['name']}:{r}": n for s in run.stages for r, n in s["reasons"].items()}},
        "dropped": reason_counts(dropped), "rows_added": kept.num_rows, "rows_total": sum(int(v["rows"]) for v in state.versions) + kept.num_rows,
        "near_dup": near, "versions": [*[{"name": v["name"], "rows": v["rows"]} for v in state.versions], {"name": name, "rows": kept.num_rows}],
    }
    tmp = root / "versions" / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    files = assemble(state, tmp, name=name, kept=kept, dropped=dropped, sig=sig, summary=summary, run_out=run.out_dir)
    replace_dir(tmp, state.version_dir(name))
    state.commit({"name": name, "created": pending["created"], "rows": kept.num_rows, "files": files}, {k: near[k] for k in (*FIXED, "column", "threshold") if k in near})
    switch_latest(root, name)
    clear_work(work)
    return RefreshResult(root, name, summary, describe(summary))


def clear_work(work: Path) -> None:
    """Forget the finished pending version (``pending.json`` first: the rest is then inert)."""
    (work / "pending.json").unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)


def drop_released(state: State, final: pa.Table, near: dict[str, Any]) -> tuple[pa.Table, pa.Table, np.ndarray]:
    """Split the run's rows into those this version adds and those an earlier release has:
    ``already_released:<id>`` (same id), ``near_duplicate_of:<id>`` (MinHash, stored
    signatures). Returns (kept, rejected, signatures of the kept rows). Sets
    ``near["column"]`` when the first version with rows picks it."""
    if final.num_rows == 0:
        return final, final.slice(0, 0), np.zeros((0, int(near["num_perm"])), np.uint32)
    near["column"] = text_column(final, near.get("column"))
    sig = row_signatures(final, near["column"], near)
    old_ids, old_sig, _ = state.release_signatures()
    ids = pc.cast(final.column("id"), pa.string()).combine_chunks()
    match = release_matches(old_sig, sig, threshold=float(near["threshold"]))
    hit = match >= 0
    dup_of = pc.take(old_ids, pa.array(np.where(hit, match, 0))) if len(old_ids) else pa.nulls(len(match), pa.string())
    reasons = pc.if_else(pa.array(hit), pc.binary_join_element_wise("near_duplicate_of:", dup_of, ""), pa.nulls(len(match), pa.string()))
    same_id = is_seen(ids, old_ids)
    reasons = pc.if_else(same_id, pc.binary_join_element_wise("already_released:", ids, ""), reasons)
    kept, rejected = split_by_reason(final, reasons)
    return kept, rejected, sig[pc.is_null(reasons).to_numpy(zero_copy_only=False)]


def reason_counts(rejected: pa.Table) -> dict[str, int]:
    from pipelines.stage import REASON

    if rejected.num_rows == 0:
        return {}
    keys = pc.extract_regex(rejected.column(REASON).combine_chunks(), r"^(?P<k>[^:]*)").field("k")
    return {str(d["values"]): int(d["counts"]) for d in pc.value_counts(keys).to_pylist()}


def align_schema(table: pa.Table, prev: pa.Schema | None) -> pa.Table:
    """This version's rows in the earlier versions' column order and types, when they have
    the same columns (a column all null tonight is typed null): the cumulative ``data/``
    must load as one dataset."""
    if prev is None or table.schema.equals(prev) or set(table.column_names) != set(prev.names):
        if prev is not None and set(table.column_names) != set(prev.names):
            log.warning("this version's columns (%s) differ from the earlier versions' (%s): load data/ per file", ", ".join(table.column_names), ", ".join(prev.names))
        return table
    try:
        return table.select(prev.names).cast(prev)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        log.warning("this version's column types differ from the earlier versions' (%s): load data/ per file", exc)
        return table


def assemble(state: State, tmp: Path, *, name: str, kept: pa.Table, dropped: pa.Table, sig: np.ndarray, summary: dict[str, Any], run_out: Path) -> dict[str, str]:
    """Write the version folder at ``tmp``; returns its own files with their sha256 (the
    hard links to earlier versions' data are theirs, checked under their versions)."""
    prev_schema = None
    for v in state.versions:
        if int(v["rows"]) > 0:
            src = state.version_dir(v["name"]) / "data" / f"train-{v['name']}.parquet"
            link_or_copy(src, tmp / "data" / src.name)
            prev_schema = pq.read_schema(src)
    own = [f"data/train-{name}.parquet"] if kept.num_rows else []
    if kept.num_rows:
        atomic_write_table(tmp / own[0], align_schema(kept, prev_schema))
    for f in sorted((run_out / "rejected").glob("*.parquet")) if (run_out / "rejected").is_dir() else []:
        link_or_copy(f, tmp / "rejected" / f.name)
    if dropped.num_rows:
        atomic_write_table(tmp / "rejected" / "99-refresh.parquet", dropped)
    plots = sorted(run_out.glob("plot-*.png"))  # the run card's figures, linked relatively
    for f in plots:
        link_or_copy(f, tmp / f.name)
    work = state.root / "work"
    link_or_copy(work / "inputs.parquet", tmp / "state" / "inputs.parquet")
    minhash = pa.FixedSizeListArray.from_arrays(pa.array(sig.reshape(-1), pa.uint32()), sig.shape[1])
    atomic_write_table(tmp / "state" / "release.parquet", pa.table({"id": pc.cast(kept.column("id"), pa.string()), "minhash": minhash}))
    atomic_write_bytes(tmp / "refresh.json", json.dumps(summary, indent=1).encode())
    run_card = (run_out / "README.md").read_text() if (run_out / "README.md").is_file() else ""
    atomic_write_bytes(tmp / "README.md", render_card(summary, dropped=dropped, run_card=run_card).encode())
    mine = ["README.md", "refresh.json", "state/inputs.parquet", "state/release.parquet", *own, *(f.name for f in plots), *sorted(f"rejected/{p.name}" for p in (tmp / "rejected").glob("*.parquet"))]
    return {rel: file_sha256(tmp / rel) for rel in mine}


def describe(summary: dict[str, Any]) -> str:
    """One line for the terminal (and cron's mail)."""
    i, d = summary["inputs"], summary["dropped"]
    dropped = sum(d.values())
    return (f"version {summary['version']}: {summary['rows_added']} rows added ({summary['rows_total']} in all); {i['new']} new input rows of {i['read']} "
            f"({i['already_seen']} seen before), {summary['run']['kept']} kept by the recipe, {dropped} already in earlier releases" + (f" ({', '.join(f'{k} {v}' for k, v in sorted(d.items()))})" if d else ""))


def render_card(summary: dict[str, Any], *, dropped: pa.Table, run_card: str) -> str:
    """The version's README.md: what it added, what it dropped as already seen, the history,
    then the card of the run that made its rows."""
    from pipelines.stage import REASON

    s, i = summary, summary["inputs"]
    d = s["dropped"]
    lines = [
        "---", "configs:", "- config_name: default", "  data_files:", "  - split: train", "    path: data/train-*.parquet", "tags:", "- aligncraft", "- refresh", "---",
        f"# {s['recipe']}: version {s['version']}", "",
        f"Made by `aligncraft refresh` on {s['created']} from `{s['input']}`; "
        + (f"previous version: `{s['previous']}`." if s["previous"] else "the first version."),
        f"`data/` holds every version's rows (**{s['rows_total']} rows**); this version's own are `data/train-{s['version']}.parquet`.", "",
        "## What this version added", "",
        "| | rows |", "| --- | ---: |",
        f"| input rows read | {i['read']} |",
        f"| already seen by an earlier version (skipped, not run) | {i['already_seen']} |",
        f"| repeated within this input (skipped) | {i['repeated']} |",
        f"| new input rows run through the recipe | {i['new']} |",
        f"| rows the recipe kept | {s['run']['kept']} |",
        f"| near-duplicates of an earlier release (dropped) | {d.get('near_duplicate_of', 0)} |",
        f"| ids already released (dropped) | {d.get('already_released', 0)} |",
        f"| **rows added** | **{s['rows_added']}** |", "",
        f"Near-duplicates: MinHash of `{s['near_dup'].get('column')}` ({s['near_dup']['shingle']} {s['near_dup']['ngram']}-grams, {s['near_dup']['num_perm']} permutations), "
        f"estimated Jaccard >= {s['near_dup']['threshold']} against the stored signatures of every earlier release. Dropped rows are in `rejected/99-refresh.parquet`.", "",
    ]
    if dropped.num_rows:
        lines += ["| dropped row | reason |", "| --- | --- |"]
        for rid, reason in zip(dropped.column("id").to_pylist()[:20], dropped.column(REASON).to_pylist()[:20]):
            lines.append(f"| `{rid}` | `{reason}` |")
        if dropped.num_rows > 20:
            lines.append(f"| ... | {dropped.num_rows - 20} more |")
        lines.append("")
    if s["run"]["rejected"]:
        lines += ["Rejected by the recipe's stages (`rejected/`): " + ", ".join(f"{k} {v}" for k, v in sorted(s["run"]["rejected"].items())) + ".", ""]
    lines += ["## Versions", "", "| version | rows added |", "| --- | ---: |"]
    lines += [f"| `{v['name']}` | {v['rows']} |" for v in s["versions"]]
    lines += ["", "## Next version", "", "```bash", s["command"], "```", ""]
    body = run_card.split("---", 2)[2] if run_card.startswith("---") and run_card.count("---") >= 2 else run_card
    if body.strip():
        lines += ["## The run that made this version's rows", ""]
        lines += [("#" + ln) if ln.startswith("#") else ln for ln in body.strip().splitlines()]
    return "\n".join(lines) + "\n"
