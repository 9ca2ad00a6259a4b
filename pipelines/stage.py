"""The stage contract every synth/filter step implements.

A stage is a small class:

* class-level ``requires`` (column -> Arrow type, or ``None`` for any type) and ``adds``
  (column -> Arrow type); a stage whose columns depend on its parameters sets
  ``self.requires``/``self.adds`` in ``__init__``;
* flags ``needs_llm`` (the executor runs it in the process that owns the engine, fed
  whole batches) and ``is_global`` (it sees all upstream rows at once: dedup, selection);
* ``parent``: set only by a stage that makes new rows from its input (CodecLM's metadata
  pool turns 20 seeds into 200 instruction slots): the kept column that names the input row
  (``id``) each new row came from. Its accounting is then by id: every input row is
  rejected or the parent of at least one kept row, never both (:func:`check_rows`);
* ``version``: an extra key in the fingerprint (which already hashes the stage's source code
  and the project modules it imports); bump it when the output changes for a reason outside
  the code (a data file, a model's prompt file);
* ``__init__(**params)`` only stores and validates (bad values raise ``ConfigError`` at once);
* ``load()`` loads models (called once per process, lazily);
* ``process(table) -> (kept, rejected)``. ``rejected`` holds the removed rows with a
  ``reject_reason`` column (and ``reject_raw`` for raw model text): build it with
  :func:`rejected_rows`. Per batch, rows in = kept + rejected, which the executor checks.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import ConfigError

REASON = "reject_reason"
RAW = "reject_raw"
STAGE = "reject_stage"


class Stage:
    """Base class: see the module docstring for the contract."""

    requires: ClassVar[Mapping[str, pa.DataType | None]] = {}
    adds: ClassVar[Mapping[str, pa.DataType]] = {}
    needs_llm: ClassVar[bool] = False
    is_global: ClassVar[bool] = False
    parent: ClassVar[str | None] = None
    version: ClassVar[str] = "1"

    def __init__(self, **params: Any) -> None:
        if params:
            msg = f"{type(self).__name__} got unknown parameter(s): {', '.join(sorted(params))}"
            raise ConfigError(msg)
        self.params: dict[str, Any] = {}

    # -- lifecycle -----------------------------------------------------------------
    def load(self) -> None:
        """Load models; called once per process before the first ``process``."""

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        raise NotImplementedError

    def check(self) -> None:
        """Validate what ``__init__`` cannot check cheaply but must fail before any model
        loads (a model path, a hub id): called by pipeline validation; raises ``ConfigError``."""

    # -- description -------------------------------------------------------------
    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        """Schema after this stage: the input plus ``adds`` (replacing same-named columns)."""
        for name, typ in self.adds.items():
            idx = schema.get_field_index(name)
            if idx >= 0:
                schema = schema.set(idx, pa.field(name, typ))
            else:
                schema = schema.append(pa.field(name, typ))
        return schema

    def engines(self) -> list[tuple[tuple, float]]:
        """The engines this stage calls, as (key, memory share): the executor keeps the stages of
        engines that fit together side by side and runs the others one engine at a time."""
        return []

    def models(self) -> dict[str, str]:
        """Models this stage uses (role -> name), for the dataset card."""
        model = self.params.get("model")
        return {"model": str(model)} if model else {}


class Filter(Stage):
    """A stage that only decides: ``reasons(table)`` returns one reason per row, null = keep.

    Mirrors datatrove's filters: the subclass writes the predicate, the base class splits
    the batch and tags the rejected rows.
    """

    def reasons(self, table: pa.Table) -> pa.Array:
        raise NotImplementedError

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        reasons = self.reasons(table)
        return split_by_reason(table, reasons)


# -- helpers every stage uses -------------------------------------------------------

def check_rows(table: pa.Table, kept: pa.Table, rejected: pa.Table, parent: str | None = None) -> int:
    """The accounting rule: how many input rows the kept rows stand for, or ``ValueError``.

    A plain stage: rows in = kept + rejected, and the kept rows stand for themselves. A stage
    with a ``parent`` column makes new rows: every input ``id`` is either rejected or named
    by some kept row's ``parent``, never both, and nothing else is named.

    >>> t = pa.table({"id": ["a", "b", "c"]})
    >>> check_rows(t, t.slice(0, 2), t.slice(2))
    2
    >>> made = pa.table({"id": ["x", "y", "z"], "from": ["a", "a", "b"]})
    >>> check_rows(t, made, t.slice(2), parent="from")
    2
    >>> check_rows(t, made, t.slice(0, 0), parent="from")
    Traceback (most recent call last):
    ...
    ValueError: row accounting violated: input row(s) c neither rejected nor the parent of a kept row
    """
    if parent is None:
        if kept.num_rows + rejected.num_rows != table.num_rows:
            msg = f"row accounting violated: {table.num_rows} rows in, {kept.num_rows} kept + {rejected.num_rows} rejected"
            raise ValueError(msg)
        return kept.num_rows
    ids = set(table.column("id").to_pylist())
    parents = set(kept.column(parent).to_pylist()) if kept.num_rows else set()
    counts = Counter(rejected.column("id").to_pylist() if rejected.num_rows else [])
    gone = set(counts)
    problems = [("rejected twice", sorted(i for i, c in counts.items() if c > 1)),
                ("both rejected and the parent of a kept row", sorted(parents & gone)),
                ("named as parent but not an input row", sorted(parents - ids, key=str)),
                ("rejected but not an input row", sorted(gone - ids)),
                ("neither rejected nor the parent of a kept row", sorted(ids - parents - gone))]
    for what, bad in problems:
        if bad:
            msg = f"row accounting violated: input row(s) {', '.join(map(str, bad[:5]))} {what}"
            raise ValueError(msg)
    return len(parents)


def rejected_rows(table: pa.Table, reason: str | Sequence[str] | pa.Array, raw: Sequence[str | None] | pa.Array | None = None) -> pa.Table:
    """Tag ``table``'s rows as rejected with ``reason`` (one string or one per row) and raw text."""
    n = table.num_rows
    if isinstance(reason, str):
        reason_arr = pa.array([reason] * n, pa.string())
    else:
        reason_arr = pa.array(reason, pa.string()) if not isinstance(reason, pa.Array) else reason.cast(pa.string())
    raw_arr = pa.nulls(n, pa.string()) if raw is None else (raw.cast(pa.string()) if isinstance(raw, pa.Array) else pa.array(list(raw), pa.string()))
    table = drop_columns(table, [REASON, RAW])
    return table.append_column(REASON, reason_arr).append_column(RAW, raw_arr)


def split_by_reason(table: pa.Table, reasons: pa.Array | Sequence[str | None], raw: pa.Array | Sequence[str | None] | None = None) -> tuple[pa.Table, pa.Table]:
    """Split rows into kept (reason is null) and rejected (reason set)."""
    reasons = reasons if isinstance(reasons, pa.Array) else pa.array(list(reasons), pa.string())
    if isinstance(reasons, pa.ChunkedArray):
        reasons = reasons.combine_chunks()
    if len(reasons) != table.num_rows:
        raise ValueError(f"got {len(reasons)} reasons for {table.num_rows} rows")
    keep_mask = pc.is_null(reasons)
    kept = table.filter(keep_mask)
    drop_mask = pc.invert(keep_mask)
    rej_raw = None
    if raw is not None:
        raw_arr = raw if isinstance(raw, pa.Array) else pa.array(list(raw), pa.string())
        rej_raw = raw_arr.filter(drop_mask)
    rejected = rejected_rows(table.filter(drop_mask), reasons.filter(drop_mask), rej_raw)
    return kept, rejected


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ``ConfigError`` unless ``value`` is one of ``choices``, naming the parameter.

    >>> check_choice("mode", "fast", ("strict", "loose"))
    Traceback (most recent call last):
    ...
    pipelines.errors.ConfigError: mode must be 'strict' or 'loose', got 'fast'
    """
    if value not in choices:
        names = [repr(c) for c in choices]
        msg = f"{name} must be {', '.join(names[:-1])} or {names[-1]}, got {value!r}"
        raise ConfigError(msg)


def check_flag(name: str, value: Any) -> None:
    """Raise ``ConfigError`` unless ``value`` is a bool (a recipe's ``"false"`` is not)."""
    if not isinstance(value, bool):
        msg = f"{name} must be true or false, got {value!r}"
        raise ConfigError(msg)


def drop_columns(table: pa.Table, names: Sequence[str]) -> pa.Table:
    present = [n for n in names if n in table.column_names]
    return table.drop_columns(present) if present else table


def set_column(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray | Sequence[Any], typ: pa.DataType | None = None) -> pa.Table:
    """Add or replace a column."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(list(values), typ)
    elif typ is not None and values.type != typ:
        values = values.cast(typ)
    idx = table.schema.get_field_index(name)
    if idx >= 0:
        return table.set_column(idx, name, values)
    return table.append_column(name, values)


def empty_rejected(table: pa.Table) -> pa.Table:
    """A rejected table with no rows and ``table``'s columns."""
    return rejected_rows(table.slice(0, 0), [])
