"""Read user input files into Arrow tables, with errors that name file, line and column.

Accepted: JSONL, JSON (a list of objects, or {"data"/"rows"/"train": [...]}), CSV, parquet,
and a local ``datasets`` folder (``save_to_disk``). ``columns`` maps the names a recipe
expects to the names in the file (``{"instruction": "prompt"}``).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.errors import InputError

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".gz")


def read_input(path: str | Path, *, columns: Mapping[str, str] | None = None, required: Sequence[str] = (), limit: int | None = None) -> pa.Table:
    """Read ``path`` and apply the column mapping; check the required columns exist."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", path=str(p))
    if p.is_dir():
        table = _read_datasets_dir(p)
    else:
        if p.stat().st_size == 0:
            raise InputError("the file is empty", path=str(p))
        name = p.name.lower()
        if name.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
            table = _read_jsonl(p)
        elif name.endswith(".json"):
            table = _read_json(p)
        elif name.endswith(".csv"):
            table = _read_csv(p)
        elif name.endswith(".parquet"):
            table = _read_parquet(p)
        else:
            raise InputError(f"unknown file type '{p.suffix}'", path=str(p), hint="use .jsonl, .json, .csv, .parquet or a datasets folder")
    if table.num_rows == 0:
        raise InputError("no rows", path=str(p))
    if limit is not None:
        table = table.slice(0, limit)
    table = map_columns(table, columns or {}, path=str(p))
    for col in required:
        if col not in table.column_names:
            raise InputError(f"missing required column '{col}' (has: {', '.join(table.column_names)})", path=str(p), column=col, hint=f"map it with --set source.columns.{col}=<name in file>")
    return table


def map_columns(table: pa.Table, columns: Mapping[str, str], *, path: str = "") -> pa.Table:
    names = list(table.column_names)
    for target, source in columns.items():
        if source not in names:
            raise InputError(f"column '{source}' (mapped to '{target}') not found; the file has: {', '.join(names)}", path=path, column=source)
    if not columns:
        return table
    rename = {src: dst for dst, src in columns.items()}
    new = [rename.get(n, n) for n in names]
    # a mapped target that also exists unmapped in the file: drop the original
    out = table.rename_columns(new)
    seen: dict[str, int] = {}
    keep = []
    for i, n in enumerate(out.column_names):
        if n in seen:
            continue
        seen[n] = i
        keep.append(i)
    return out.select(keep) if len(keep) != len(new) else out


def _lines(p: Path):
    import gzip

    opener = gzip.open if p.name.endswith(".gz") else open
    with opener(p, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"not valid UTF-8 at byte {exc.start} ({exc.reason})", path=str(p), line=lineno) from None


def json_records(p: Path):
    """(line number, object) for each non-blank JSON Lines record; bad bytes, bad JSON or a
    non-object name the file and line."""
    for lineno, line in _lines(p):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON at character {exc.colno}: {exc.msg}", path=str(p), line=lineno) from None
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object, got {type(obj).__name__}", path=str(p), line=lineno)
        yield lineno, obj


def _read_jsonl(p: Path) -> pa.Table:
    rows = [obj for _, obj in json_records(p)]
    if not rows:
        raise InputError("the file has no records", path=str(p))
    return _from_rows(rows, p)


def _read_json(p: Path) -> pa.Table:
    text = "".join(line for _, line in _lines(p))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON at character {exc.colno}: {exc.msg}", path=str(p), line=exc.lineno) from None
    if isinstance(obj, dict):
        for key in ("data", "rows", "train", "instances"):
            if isinstance(obj.get(key), list):
                obj = obj[key]
                break
    if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
        raise InputError("expected a JSON list of objects", path=str(p))
    if not obj:
        raise InputError("the file has no records", path=str(p))
    return _from_rows(obj, p)


def _from_rows(rows: list[dict[str, Any]], p: Path) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        # find the first row whose types disagree with the first row, to name it
        keys = list(rows[0])
        for i, r in enumerate(rows, start=1):
            for k in r:
                if k in rows[0] and type(r[k]) is not type(rows[0][k]) and r[k] is not None and rows[0][k] is not None:
                    raise InputError(f"value of type {type(r[k]).__name__} where earlier rows have {type(rows[0][k]).__name__}", path=str(p), line=i, column=k) from None
        raise InputError(f"inconsistent record types: {exc} (columns {keys})", path=str(p)) from None


def _read_csv(p: Path) -> pa.Table:
    import pyarrow.csv as pacsv

    for lineno, _ in _lines(p):  # UTF-8 check with a line number
        pass
    try:
        return pacsv.read_csv(p)
    except pa.ArrowInvalid as exc:
        line, detail = _csv_bad_row(p)
        raise InputError(f"malformed CSV: {detail or exc}", path=str(p), line=line) from None


def _csv_bad_row(p: Path) -> tuple[int | None, str | None]:
    """The first record whose field count differs from the header's (Arrow's error has no line)."""
    import csv

    with open(p, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        for row in reader:
            if row and len(row) != len(header):
                return reader.line_num, f"{len(row)} fields where the header has {len(header)}"
    return None, None


def _read_parquet(p: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable parquet file: {exc}", path=str(p)) from None


def _read_datasets_dir(p: Path) -> pa.Table:
    files = sorted(f for f in p.iterdir() if f.name.endswith((".jsonl", ".json", ".parquet", ".csv"))) if not (p / "dataset_info.json").exists() and not (p / "dataset_dict.json").exists() else []
    if files and not (p / "state.json").exists():
        tables = [read_input(f) for f in files]
        return pa.concat_tables(tables, promote_options="permissive")
    try:
        import datasets

        ds = datasets.load_from_disk(str(p))
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"not a datasets folder (save_to_disk) nor a folder of data files: {exc}", path=str(p)) from None
    if isinstance(ds, datasets.DatasetDict):
        split = "train" if "train" in ds else next(iter(ds))
        ds = ds[split]
    return ds.data.table
