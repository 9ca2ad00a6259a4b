"""The per-row state that carries an instruction through CodecLM's rounds.

Every round stage reads ``codeclm_status``: rows still ``pending`` are worked on; rows
already ``accepted`` in an earlier round pass through untouched, with no model call, so the
final stage's kept table holds every accepted row whatever its round. Only
``codeclm_decide`` changes the status or appends to ``lineage``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.stage import set_column

STATUS = "codeclm_status"
ROUND = "codeclm_round"
ERROR = "codeclm_error"
PENDING = "pending"
ACCEPTED = "accepted"

LINEAGE_ENTRY = pa.struct([
    ("round", pa.int64()),
    ("instruction", pa.string()),
    ("action", pa.string()),
    ("score_strong", pa.float64()),
    ("score_target", pa.float64()),
    ("gap", pa.float64()),
    ("outcome", pa.string()),
])
LINEAGE = pa.list_(LINEAGE_ENTRY)

# what decode starts every row with, and what the round stages require
ROUND_COLUMNS: dict[str, pa.DataType] = {STATUS: pa.string(), ROUND: pa.int64(), "action": pa.string(), ERROR: pa.string(), "lineage": LINEAGE}


def pending_mask(table: pa.Table) -> pa.Array:
    """True where the row is still in the loop."""
    return pc.fill_null(pc.equal(table.column(STATUS), PENDING), False).combine_chunks()


def pending_indices(table: pa.Table) -> list[int]:
    return [i for i, p in enumerate(pending_mask(table).to_pylist()) if p]


def update_pending(table: pa.Table, name: str, values: Sequence[Any], typ: pa.DataType, mask: pa.Array | None = None) -> pa.Table:
    """Set ``name`` on the pending rows (``values`` in their order); other rows keep theirs.

    A column that does not exist yet starts as nulls, so round 1 can add it.
    """
    mask = pending_mask(table) if mask is None else mask
    old = table.column(name).combine_chunks().cast(typ) if name in table.column_names else pa.nulls(table.num_rows, typ)
    if len(values) == 0:
        return set_column(table, name, old, typ)
    # concat + take works for nested types too (replace_with_mask has no list/struct kernel)
    flags = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
    take = np.arange(table.num_rows, dtype=np.int64)
    take[flags] = table.num_rows + np.arange(int(flags.sum()), dtype=np.int64)
    new = pa.concat_arrays([old, pa.array(list(values), typ)]).take(pa.array(take))
    return set_column(table, name, new, typ)


def first_error(current: Sequence[str | None], new: Sequence[str | None]) -> list[str | None]:
    """Keep the first error a round met (strong answer before target answer before judge).

    >>> first_error([None, "prompt_too_long", None], [None, "parse_error:judge", "empty"])
    [None, 'prompt_too_long', 'empty']
    """
    return [c if c is not None else n for c, n in zip(current, new)]


def row_seeds(ids: Sequence[str], seed: int, salt: str) -> list[int]:
    """A sampling seed per row from (stage seed, salt, row id): stable across shards and resumes.

    >>> row_seeds(["a", "b"], 0, "decode") == row_seeds(["a", "b"], 0, "decode")
    True
    >>> row_seeds(["a"], 0, "decode") != row_seeds(["a"], 1, "decode")
    True
    """
    return [int(hashlib.sha1(f"{seed}:{salt}:{i}".encode()).hexdigest()[:8], 16) % (2**31 - 1) for i in ids]
