"""Read user input files into Arrow tables, with errors that name file, line and column.

Accepted: JSONL, JSON (a list of objects, or {"data"/"rows"/"train": [...]}), CSV, parquet,
and a local ``datasets`` folder (``save_to_disk``). ``columns`` maps the names a recipe
expects to the names in the file (``{"instruction": "prompt"}``).

JSON Lines go through ``pyarrow.json`` in one multi-threaded scan whose schema is the union
of every record's keys (``pa.Table.from_pylist`` took its columns from the first record, so a
key the first record lacked vanished without a word). A JSON list is typed the same way, by
``pa.array`` over all records. When Arrow refuses a file, a Python walk over the lines finds
the first bad one to name it: the walk runs only on that error path.
"""
from __future__ import annotations

import gzip
import json
import logging
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.errors import InputError

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".gz")
BOM = b"\xef\xbb\xbf"
# Arrow parses JSON Lines in blocks and a record must fit in one: start at 8 MiB and grow
# to the file size for files with huge records.
BLOCK_SIZE = 8 << 20
# a gzip file Python cannot decompress raises one of these
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def one_line(exc: BaseException, limit: int = 200) -> str:
    """A library's error message as one short line: Arrow's can end in a newline or quote
    a whole (huge) row, and an error message must stay one line.

    >>> one_line(ValueError("Couldn't deserialize thrift:\\n   don't know\\n"))
    "Couldn't deserialize thrift: don't know"
    """
    text = " ".join(str(exc).split())
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
            table = read_jsonl(p)
        elif name.endswith(".json"):
            table = _read_json(p)
        elif name.endswith(".csv"):
            table = _read_csv(p)
        elif name.endswith(".parquet"):
            table = _read_parquet(p)
        else:
            raise InputError(f"unknown file type '{p.suffix}'", path=str(p), hint="use .jsonl, .jsonl.gz, .json, .csv, .parquet or a datasets folder")
    if table.num_rows == 0:
        raise InputError("no rows", path=str(p))
    table = null_columns_as_text(table)
    if limit is not None:
        table = table.slice(0, limit)
    table = map_columns(table, columns or {}, path=str(p))
    for col in required:
        if col not in table.column_names:
            raise InputError(f"missing required column '{col}' (has: {', '.join(table.column_names)})", path=str(p), column=col, hint=f"map it with --set source.columns.{col}=<name in file>")
    return table


def null_columns_as_text(table: pa.Table) -> pa.Table:
    """Give a column with no value at all (Arrow type ``null``: a key that is always null in
    JSON, an all-null parquet column) the string type: it carries no type of its own, and
    text kernels (an ``empty_filter`` on it) have no ``null`` version.

    >>> null_columns_as_text(pa.table({"a": pa.nulls(2), "b": [1, 2]})).schema.types
    [DataType(string), DataType(int64)]
    """
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            table = table.set_column(i, pa.field(f.name, pa.string()), table.column(i).cast(pa.string()))
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


# -- JSON Lines -----------------------------------------------------------------------
def read_jsonl(p: Path) -> pa.Table:
    """A JSON Lines file (optionally ``.gz``, optionally with a UTF-8 BOM) as one table.

    Columns are the union of all records' keys, in order of first appearance; a record
    without a key gets a null there. Strings stay strings (Arrow would infer timestamps).
    A bad record raises ``InputError`` naming its line.
    """
    try:
        table = _arrow_jsonl(p, None)
        if _has_timestamp(table.schema):
            # Arrow's inference turns ISO-date-like strings into timestamps; JSON has none,
            # so read those fields again as the strings they are
            table = _arrow_jsonl(p, pa.schema([pa.field(f.name, _no_timestamps(f.type)) for f in table.schema]))
        table.validate(full=True)  # Arrow's JSON parser does not check UTF-8; this does
    except GZIP_ERRORS as exc:
        raise InputError(f"not a readable gzip file ({one_line(exc)})", path=str(p)) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as exc:  # bad UTF-8 in a key: Arrow passes it, reading the name fails
        if _gzip_broken(p):
            raise InputError(f"not a readable gzip file ({one_line(exc)})", path=str(p)) from None
        diagnose_jsonl(p)  # raises with the line when it can find it
        # every line is a good record, yet Arrow refused the file or built an invalid table
        # (fuzzing found: a key holding [null, null] in one record and absent in the next):
        # read it in Python, typed the same way as a JSON list
        numbered = list(json_records(p))
        if not numbered:
            raise InputError("the file has no records", path=str(p)) from None
        log.warning("%s: Arrow's JSON reader failed (%s); read in Python instead", p, one_line(exc))
        table = records_table([obj for _, obj in numbered], p, lines=[n for n, _ in numbered])
    if table.num_rows == 0:
        raise InputError("the file has no records", path=str(p))
    return table


def _arrow_jsonl(p: Path, schema: pa.Schema | None) -> pa.Table:
    import pyarrow.json as pj

    size = p.stat().st_size
    block = BLOCK_SIZE
    while True:
        stream = _open_stream(p)
        try:
            parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer") if schema is not None else None
            return pj.read_json(stream, read_options=pj.ReadOptions(block_size=block), parse_options=parse)
        except pa.ArrowInvalid as exc:
            # a record longer than a block: retry with bigger blocks (up to the whole file)
            if "straddling" not in str(exc) or block >= max(size, 1) * (20 if p.name.endswith(".gz") else 1):
                raise
            block *= 4
        finally:
            stream.close()


def _open_stream(p: Path) -> Any:
    """An Arrow input stream positioned after a leading UTF-8 BOM, if any (as ``utf-8-sig``)."""
    compression = "gzip" if p.name.lower().endswith(".gz") else None
    stream = pa.input_stream(str(p), compression=compression)
    if stream.read(3) != BOM:
        stream.close()
        stream = pa.input_stream(str(p), compression=compression)
    return stream


def _gzip_broken(p: Path) -> bool:
    if not p.name.lower().endswith(".gz"):
        return False
    try:
        with gzip.open(p, "rb") as f:
            while f.read(1 << 20):
                pass
    except (*GZIP_ERRORS, OSError):
        return True
    return False


def _has_timestamp(schema: pa.Schema) -> bool:
    return any(_no_timestamps(f.type) != f.type for f in schema)


def _no_timestamps(t: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _no_timestamps(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(_no_timestamps(t.value_type))
    if pa.types.is_large_list(t):
        return pa.large_list(_no_timestamps(t.value_type))
    return t


def _lines(p: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 text file (``.gz`` too); a leading BOM is dropped."""
    opener = gzip.open if p.name.lower().endswith(".gz") else open
    lineno = 0
    try:
        with opener(p, "rb") as f:
            for lineno, raw in enumerate(f, start=1):
                if lineno == 1 and raw.startswith(BOM):
                    raw = raw[3:]
                try:
                    yield lineno, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(f"not valid UTF-8 at byte {exc.start} ({exc.reason})", path=str(p), line=lineno) from None
    except GZIP_ERRORS as exc:
        raise InputError(f"not a readable gzip file ({one_line(exc)})", path=str(p), line=lineno + 1 if lineno else None) from None


def json_records(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
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


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"key '{k}' appears twice in one record")
        seen[k] = v
    return seen


def diagnose_jsonl(p: Path) -> None:
    """Find the first line Arrow cannot take (bad JSON, not an object, a key given twice, a
    value whose JSON kind differs from earlier lines') and raise ``InputError`` naming it."""
    kinds = KindTracker(p, unit="line")
    for lineno, line in _lines(p):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON at character {exc.colno}: {exc.msg}", path=str(p), line=lineno) from None
        except ValueError as exc:
            raise InputError(str(exc), path=str(p), line=lineno) from None
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object, got {type(obj).__name__}", path=str(p), line=lineno)
        check_unicode(obj, p, line=lineno)
        kinds.check(obj, lineno)


class KindTracker:
    """Remembers the JSON kind (text, number, true/false, object, list) seen at each key path
    and raises ``InputError`` at the first record that puts another kind there.

    >>> k = KindTracker("f.jsonl", unit="line")
    >>> k.check({"a": "x", "m": [{"c": "hi"}]}, 1)
    >>> k.check({"a": None, "m": [{"c": 3}]}, 2)
    Traceback (most recent call last):
    ...
    pipelines.errors.InputError: f.jsonl, line 2, column 'm': value at m[].c is a number where earlier lines have text
    """

    NAMES = {str: "text", bool: "true/false", int: "a number", float: "a number", dict: "an object", list: "a list"}

    def __init__(self, path: str | Path, *, unit: str) -> None:
        self.path, self.unit = str(path), unit
        self.seen: dict[str, str] = {}

    def check(self, obj: dict[str, Any], where: int) -> None:
        for key, value in obj.items():
            self._visit(key, key, value, where)

    def _visit(self, top: str, path: str, value: Any, where: int) -> None:
        if value is None:
            return
        kind = self.NAMES.get(type(value), type(value).__name__)
        had = self.seen.setdefault(path, kind)
        if had != kind:
            at = "" if path == top else f" at {path}"
            msg = f"value{at} is {kind} where earlier {self.unit}s have {had}"
            raise InputError(msg, path=self.path, **{self.unit: where}, column=top)
        if isinstance(value, dict):
            for k, v in value.items():
                self._visit(top, f"{path}.{k}", v, where)
        elif isinstance(value, list):
            for v in value:
                self._visit(top, f"{path}[]", v, where)


# -- other formats -------------------------------------------------------------------
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
    return records_table(obj, p)


def check_unicode(obj: dict[str, Any], p: str | Path, **where: int) -> None:
    """Raise ``InputError`` if a string in ``obj`` holds an unpaired surrogate (JSON's
    ``"\\ud800"`` escape decodes to one; it is not Unicode text and Arrow refuses it).

    >>> check_unicode({"a": "ok", "b": ["x\\ud800"]}, "f.json", row=2)
    Traceback (most recent call last):
    ...
    pipelines.errors.InputError: f.json, row 2, column 'b': an unpaired surrogate '\\ud800' (a \\u escape that is not Unicode text)
    """
    for key, value in obj.items():
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start:exc.end]
            raise InputError(f"an unpaired surrogate {bad!r} (a \\u escape that is not Unicode text)", path=str(p), column=str(key), **where) from None


def records_table(rows: list[dict[str, Any]], p: str | Path, *, lines: Sequence[int] | None = None) -> pa.Table:
    """A table whose columns are the union of the records' keys (first-appearance order).

    Errors name the record's row (1-based), or its line when ``lines`` gives each record's.
    """
    unit = "line" if lines is not None else "row"
    at = (lambda i: lines[i - 1]) if lines is not None else (lambda i: i)  # noqa: E731
    try:
        return pa.Table.from_struct_array(pa.array(rows))
    except UnicodeEncodeError:
        for i, r in enumerate(rows, start=1):
            check_unicode(r, p, **{unit: at(i)})
        raise
    except OverflowError:  # fuzzing found: an integer past 64 bits was a traceback
        for i, r in enumerate(rows, start=1):
            for key, value in r.items():
                try:
                    pa.array([value])
                except OverflowError:
                    raise InputError("a number too large for a 64-bit integer", path=str(p), column=str(key), hint="write it as a string or a float", **{unit: at(i)}) from None
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        kinds = KindTracker(p, unit=unit)
        for i, r in enumerate(rows, start=1):
            kinds.check(r, at(i))
        raise InputError(f"inconsistent record types: {one_line(exc)}", path=str(p)) from None


def _read_csv(p: Path) -> pa.Table:
    import pyarrow.csv as pacsv

    for _ in _lines(p):  # UTF-8 check with a line number
        pass
    try:
        return pacsv.read_csv(p)
    except pa.ArrowInvalid as exc:
        line, detail = _csv_bad_row(p)
        raise InputError(f"malformed CSV: {detail or one_line(exc)}", path=str(p), line=line) from None


def _csv_bad_row(p: Path) -> tuple[int | None, str | None]:
    """The first record whose field count differs from the header's (Arrow's error has no line)."""
    import csv

    csv.field_size_limit(1 << 30)  # Python's default (128 KiB) refuses fields Arrow reads
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, [])
            for row in reader:
                if row and len(row) != len(header):
                    return reader.line_num, f"{len(row)} fields where the header has {len(header)}"
        except csv.Error as exc:
            return reader.line_num, one_line(exc)
    return None, None


def _read_parquet(p: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable parquet file: {one_line(exc)}", path=str(p)) from None


def _read_datasets_dir(p: Path) -> pa.Table:
    if (p / "data").is_dir() and (p / "stats.json").is_file():
        # an aligncraft output folder (data/, dataset/, rejected/, stats.json): its dataset,
        # so one recipe's output is the next one's --input
        p = p / "data"
    files = sorted(f for f in p.iterdir() if f.name.endswith((".jsonl", ".json", ".parquet", ".csv"))) if not (p / "dataset_info.json").exists() and not (p / "dataset_dict.json").exists() else []
    if files and not (p / "state.json").exists():
        tables = [read_input(f) for f in files]
        return pa.concat_tables(tables, promote_options="permissive")
    try:
        import datasets

        ds = datasets.load_from_disk(str(p))
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"not a datasets folder (save_to_disk) nor a folder of data files: {one_line(exc)}", path=str(p)) from None
    if isinstance(ds, datasets.DatasetDict):
        split = "train" if "train" in ds else next(iter(ds))
        ds = ds[split]
    return ds.data.table
