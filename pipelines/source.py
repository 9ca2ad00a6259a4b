"""Where rows come from: an input file, or generated slots for synthesis stages.

Ids are stable: an input row's id is a content hash of the row; a generated row's id comes
from the recipe seed and its position, never from generated text (vLLM output can change
with batch composition). Shard boundaries are fixed by ``batch_size``, so a resumed run
re-creates exactly the same batches.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import ConfigError, InputError
from pipelines.inputs import read_input

ID_MODES = ("input", "content")
GENERATED_SCHEMA = pa.schema([("id", pa.string()), ("row_seed", pa.int64())])

# Accepted spellings of the SFT columns, in the order they are tried (as TRL's data_utils
# lists accepted column sets): Alpaca's output, prompt/completion, chosen-less ShareGPT...
SFT_ALIASES = {"instruction": ("prompt", "question", "query"), "response": ("output", "completion", "answer")}


def _is_text_list(typ: pa.DataType) -> bool:
    return (pa.types.is_list(typ) or pa.types.is_large_list(typ)) and (pa.types.is_string(typ.value_type) or pa.types.is_large_string(typ.value_type))


def maybe_sft_columns(table: pa.Table, *, path: str | None = None) -> pa.Table:
    """Give ``instruction``/``response`` columns to common SFT layouts; safe to apply twice.

    Renames the first alias present (``output`` -> ``response``, ``prompt`` -> ``instruction``)
    and, for a ``messages`` column with no instruction, takes the first user and assistant turns;
    MT-Bench's ``turns`` (a list of user turns) gives its first turn as the instruction.

    >>> maybe_sft_columns(pa.table({"turns": [["Hi?", "And then?"], []]})).column("instruction").to_pylist()
    ['Hi?', None]
    """
    names = table.column_names
    for target, aliases in SFT_ALIASES.items():
        if target in names:
            continue
        for a in aliases:
            if a in names and (pa.types.is_string(table.schema.field(a).type) or pa.types.is_large_string(table.schema.field(a).type)):
                table = table.rename_columns([target if n == a else n for n in table.column_names])
                break
    names = table.column_names
    if "instruction" not in names and "turns" in names and _is_text_list(table.schema.field("turns").type):
        # MT-Bench and Vicuna question files: {"turns": ["first user turn", ...]}
        import pyarrow.compute as pc

        turns = table.column("turns")
        nonempty = pc.if_else(pc.fill_null(pc.greater(pc.list_value_length(turns), 0), False), turns, pa.scalar(None, turns.type))
        table = table.append_column("instruction", pc.list_element(nonempty, 0).cast(pa.string()))
        names = table.column_names
    if "messages" in names and ("instruction" not in names or "response" not in names):
        typ = table.schema.field("messages").type
        # fuzzing found: a text or list-of-text `messages` column crashed here (AttributeError)
        if not ((pa.types.is_list(typ) or pa.types.is_large_list(typ)) and pa.types.is_struct(typ.value_type) and typ.value_type.get_field_index("role") >= 0 and typ.value_type.get_field_index("content") >= 0
                and (pa.types.is_string(typ.value_type.field("content").type) or pa.types.is_large_string(typ.value_type.field("content").type))):
            raise InputError(f"'messages' has type {typ}; expected a list of {{role, content}} objects", path=path, column="messages", hint="or give instruction/response columns")
        msgs = table.column("messages").to_pylist()
        first = lambda conv, role: next((m["content"] for m in (conv or []) if isinstance(m, dict) and m.get("role") == role), None)  # noqa: E731
        if "instruction" not in names:
            table = table.append_column("instruction", pa.array([first(c, "user") for c in msgs], pa.string()))
        if "response" not in table.column_names:
            table = table.append_column("response", pa.array([first(c, "assistant") for c in msgs], pa.string()))
    return table


def content_ids(table: pa.Table) -> pa.Array:
    """sha1 of each row's canonical JSON (top-level keys sorted, compact), 16 hex chars.

    A repeated row gets its occurrence number mixed in, so ids stay unique and still
    depend only on the input. The JSON text comes from polars in one vectorized pass
    (4x the old per-row ``json.dumps`` of ``to_pylist`` at 200k rows); only the sha1 runs per row.

    >>> content_ids(pa.table({"b": ["x", "x"], "a": [1, 1]})).to_pylist()
    ['6773f537e1288132', '7eb17a4da462cae6']
    """
    import polars as pl

    cols = sorted(table.column_names)
    try:
        df = pl.from_arrow(table.select(cols))
        keys = df.select(pl.struct(pl.all()).struct.json_encode().alias("k")).with_columns(pl.int_range(pl.len()).over("k").alias("n"))
        texts, nth = keys["k"].to_list(), keys["n"].to_list()
    except (pl.exceptions.PolarsError, pa.ArrowException):  # a type polars cannot encode: per row
        texts, nth, seen = [], [], {}
        for r in table.select(cols).to_pylist():
            key = json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
            texts.append(key)
            nth.append(seen.get(key, 0))
            seen[key] = nth[-1] + 1
    out = [hashlib.sha1((k if n == 0 else f"{k}\x00{n}").encode()).hexdigest()[:16] for k, n in zip(texts, nth)]
    return pa.array(out, pa.string())


def check_ids(ids: pa.ChunkedArray | pa.Array, *, path: str) -> None:
    """Raise ``InputError`` at the first null, empty or repeated id, naming its row (1-based).

    >>> check_ids(pa.array(["a", "b", "a"]), path="in.jsonl")
    Traceback (most recent call last):
    ...
    pipelines.errors.InputError: in.jsonl, row 3, column 'id': id 'a' repeats row 1's
    """
    import polars as pl

    hint = "ids must be unique; or let aligncraft make content ids: --set source.ids=content"
    s = pl.Series("id", ids)
    missing = s.is_null() | (s.str.strip_chars() == "")
    if missing.any():
        row = int(missing.arg_true()[0])
        raise InputError("null or empty id", path=path, row=row + 1, column="id", hint=hint)
    repeat = ~s.is_first_distinct()
    if repeat.any():
        row = int(repeat.arg_true()[0])
        first = int((s == s[row]).arg_true()[0])
        raise InputError(f"id {s[row]!r} repeats row {first + 1}'s", path=path, row=row + 1, column="id", hint=hint)


def generated_slots(num_rows: int, seed: int, start: int = 0) -> pa.Table:
    """Rows ``start..num_rows-1`` of a generation source: id and a per-row sampling seed."""
    pos = np.arange(start, num_rows, dtype=np.int64)
    ids = [hashlib.sha1(f"{seed}:{int(i)}".encode()).hexdigest()[:16] for i in pos]
    # a per-row seed that depends only on (recipe seed, position)
    row_seed = (np.uint64(seed) * np.uint64(1_000_003) + pos.astype(np.uint64) * np.uint64(2_654_435_761)) % np.uint64(2**31 - 1)
    return pa.table({"id": pa.array(ids, pa.string()), "row_seed": pa.array(row_seed.astype(np.int64))})


class Source:
    """Builds the source table and its fingerprint from a recipe's ``source:`` section."""

    def __init__(self, spec: dict[str, Any], *, seed: int, input_path: str | None = None, limit: int | None = None) -> None:
        spec = dict(spec)
        self.type = spec.pop("type", "input")
        self.seed = seed
        self.limit = limit
        if self.type == "generate":
            n = spec.pop("num_rows", None)
            if not isinstance(n, int) or n < 1:
                raise ConfigError(f"source.num_rows must be a positive integer, got {n!r}")
            self.num_rows = min(n, limit) if limit else n
        elif self.type == "input":
            self.path = input_path or spec.pop("path", None)
            if not self.path:
                raise ConfigError("this recipe reads an input file: pass --input PATH", hint="e.g. aligncraft run curate --input my_sft.jsonl")
            self.columns = spec.pop("columns", None) or {}
            self.required = spec.pop("required", None) or []
            self.normalize = spec.pop("normalize", None)
            if self.normalize not in (None, "sft"):
                raise ConfigError(f"source.normalize must be 'sft' or absent, got {self.normalize!r}")
            self.ids = spec.pop("ids", "input")
            if self.ids not in ID_MODES:
                raise ConfigError(f"source.ids must be 'input' or 'content', got {self.ids!r}", hint="'input' uses the file's id column (checked: no nulls, no repeats), 'content' makes content ids")
        else:
            raise ConfigError(f"unknown source type '{self.type}'", hint="use 'generate' or 'input'")
        spec.pop("path", None)
        if spec:
            raise ConfigError(f"source: unknown key(s) {sorted(spec)}")
        self._table: pa.Table | None = None

    def table(self) -> pa.Table:
        if self._table is None:
            if self.type == "generate":
                self._table = generated_slots(self.num_rows, self.seed)
            else:
                t = read_input(self.path, columns=self.columns, required=() if self.normalize else self.required, limit=self.limit)
                if self.normalize == "sft":
                    t = maybe_sft_columns(t, path=str(self.path))
                    missing = [c for c in self.required if c not in t.column_names]
                    if missing:
                        raise InputError(f"no column for '{missing[0]}' (has: {', '.join(t.column_names)}); accepted: {missing[0]} or {', '.join(SFT_ALIASES.get(missing[0], ()))}", path=str(self.path), column=missing[0], hint=f"map it with --set source.columns.{missing[0]}=<name in file>")
                t = self._with_ids(t)
                self._table = t
        return self._table

    def _with_ids(self, t: pa.Table) -> pa.Table:
        """The file's ``id`` column, checked, or content ids (``ids: content``, or no ``id`` column).

        Ids are trusted downstream (``duplicate_of:<id>``, Magpie's ``min_similar_uuid != id``),
        so a null or repeated user id is an input error naming the row; with ``ids: content``
        the file's value is kept as ``input_id``.
        """
        if "id" in t.column_names and self.ids == "input":
            ids = t.column("id")
            if not pa.types.is_string(ids.type):
                ids = ids.cast(pa.string())
                t = t.set_column(t.schema.get_field_index("id"), "id", ids)
            check_ids(ids, path=str(self.path))
            return t
        if "id" in t.column_names:
            user = t.column("id")
            t = t.drop_columns(["id"])
            t = t.append_column("id", content_ids(t))
            return t if "input_id" in t.column_names else t.append_column("input_id", user)
        return t.append_column("id", content_ids(t))

    def file_column(self, col: str) -> str:
        """The input file's name for pipeline column ``col`` (``source.columns`` maps them)."""
        return next((src for dst, src in self.columns.items() if dst == col), col) if self.type == "input" else col

    def describe_value(self, col: str) -> str:
        """", in <file>, row N: <value>" for the first non-null value of ``col``, to point a
        type error at the data (every value of an Arrow column has the column's type)."""
        if self.type != "input":
            return ""
        arr = self.table().column(col)
        valid = pc.is_valid(arr)
        if not pc.any(valid).as_py():
            return ""
        row = pc.index(valid, True).as_py()
        value = repr(arr[row].as_py())
        value = value if len(value) <= 60 else value[:57] + "..."
        where = f"column '{self.file_column(col)}'" if self.file_column(col) != col else ""
        return f" (in {self.path}, row {row + 1}{', ' + where if where else ''}: {value})"

    def check_no_nulls(self, col: str, *, stage: str) -> None:
        """Raise ``InputError`` naming the first row whose ``col`` is null."""
        if self.type != "input":
            return
        arr = self.table().column(col)
        if arr.null_count == 0:
            return
        row = pc.index(pc.is_null(arr), True).as_py()
        msg = f"null value where stage '{stage}' needs text ({arr.null_count} null row(s) in all)"
        hint = f"fill or drop those rows, or put an empty_filter on '{col}' before '{stage}' to reject them with a reason"
        raise InputError(msg, path=str(self.path), row=row + 1, column=self.file_column(col), hint=hint)

    def schema(self) -> pa.Schema:
        return GENERATED_SCHEMA if self.type == "generate" else self.table().schema

    def fingerprint(self) -> str:
        """Hash of the source's options, its data and the code that reads it (this module and
        the readers it imports): a fixed reader changes every stage's fingerprint."""
        from pipelines.pipeline import code_hash

        h = hashlib.sha256()
        h.update(code_hash(__name__).encode())
        if self.type == "generate":
            h.update(f"generate:{self.num_rows}:{self.seed}".encode())
        else:
            p = Path(self.path)
            h.update(json.dumps({"columns": self.columns, "limit": self.limit, "normalize": self.normalize, "ids": self.ids}, sort_keys=True).encode())
            files = sorted(p.rglob("*")) if p.is_dir() else [p]
            for f in files:
                if f.is_file():
                    with open(f, "rb") as fh:
                        for block in iter(lambda: fh.read(1 << 20), b""):
                            h.update(block)
        return h.hexdigest()[:16]

    def describe(self) -> str:
        return f"generate {self.num_rows} rows (seed {self.seed})" if self.type == "generate" else f"input {self.path}"
