"""CodecLM step 2, the metadata pool: seed metadata augmented by mixing and matching.

Paper (§4.1, A.2): the seeds' metadata are augmented to **200** by combining one seed use
case with one or more skills drawn without replacement from the union of every seed's
skills (the authors then removed unreasonable pairs by hand; ``codeclm_sanity`` offers an
LLM check). Each metadata gets an equal share of the basic instructions.

Rows are instruction slots: the stage contract keeps rows in = kept + rejected, so the
data size is the number of seed rows that reached this stage, and each slot is assigned
one metadata of the pool, every metadata an equal share (see :func:`allocate`).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.stage import Stage, empty_rejected

POOL_COLUMNS: dict[str, pa.DataType] = {
    "use_case": pa.string(),
    "skills": pa.list_(pa.string()),
    "metadata_id": pa.string(),
    "metadata_origin": pa.string(),
    "seed_id": pa.string(),
    "seed_instruction": pa.string(),
}


def metadata_id(use_case: str, skills: Sequence[str]) -> str:
    """A content id for a metadata: case-insensitive use case and skill set.

    >>> metadata_id("Poetry", ["meter", "rhyme"]) == metadata_id("poetry ", ["Rhyme", "meter"])
    True
    """
    key = use_case.strip().lower() + "\x00" + "\x00".join(sorted(s.strip().lower() for s in skills))
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def build_pool(seeds: Sequence[dict[str, Any]], *, size: int = 200, max_skills: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    """The seeds' distinct metadata, then mixed ones up to ``size``.

    ``seeds`` are dicts with ``id``, ``instruction``, ``use_case``, ``skills``. A mixed
    metadata takes the use case of a seed drawn at random (so frequent use cases stay
    frequent, as in the seed distribution) and 1..``max_skills`` skills drawn without
    replacement from the union of all skills (case-insensitive); duplicates of pool
    entries are redrawn, and when the combinations run out (few seeds) the pool stays
    smaller than ``size``. With more distinct seed metadata than ``size``, all of them
    are kept and nothing is mixed.

    >>> seeds = [{"id": "a", "instruction": "x", "use_case": "poetry", "skills": ["rhyme"]},
    ...          {"id": "b", "instruction": "y", "use_case": "coding", "skills": ["python", "sql"]}]
    >>> pool = build_pool(seeds, size=5, seed=0)
    >>> len(pool), [p["metadata_origin"] for p in pool][:2]
    (5, ['seed', 'seed'])
    >>> all(p["use_case"] in ("poetry", "coding") for p in pool)
    True
    """
    pool: list[dict[str, Any]] = []
    seen: set[str] = set()
    for s in seeds:
        mid = metadata_id(s["use_case"], s["skills"])
        if mid not in seen:
            seen.add(mid)
            pool.append({"use_case": s["use_case"], "skills": list(s["skills"]), "metadata_id": mid, "metadata_origin": "seed", "seed_id": s["id"], "seed_instruction": s["instruction"]})
    spelling: dict[str, str] = {}  # one skill per case-insensitive name, first spelling kept
    for s in seeds:
        for k in s["skills"]:
            spelling.setdefault(k.strip().lower(), k.strip())
    union = [spelling[k] for k in sorted(spelling)]
    if not seeds or not union:
        return pool
    rng = np.random.default_rng(seed)
    tries = 0
    while len(pool) < size and tries < 50 * size:
        tries += 1
        donor = seeds[int(rng.integers(len(seeds)))]
        k = int(rng.integers(1, min(max_skills, len(union)) + 1))
        skills = [union[i] for i in sorted(rng.choice(len(union), size=k, replace=False))]
        mid = metadata_id(donor["use_case"], skills)
        if mid in seen:
            continue
        seen.add(mid)
        pool.append({"use_case": donor["use_case"], "skills": skills, "metadata_id": mid, "metadata_origin": "mixed", "seed_id": donor["id"], "seed_instruction": donor["instruction"]})
    return pool


def allocate(n_slots: int, n_metadata: int, *, seed: int = 0) -> np.ndarray:
    """Metadata index per slot, every metadata an equal share (counts differ by at most 1).

    The metadata order is a seeded permutation, so with fewer slots than metadata the ones
    used are a uniform sample of the pool.

    >>> idx = allocate(10, 4, seed=0)
    >>> sorted(np.bincount(idx, minlength=4).tolist())
    [2, 2, 3, 3]
    >>> len(set(allocate(3, 200, seed=1).tolist()))
    3
    """
    if n_metadata < 1:
        return np.zeros(0, dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(n_metadata)
    return perm[np.arange(n_slots) % n_metadata]


class CodecMetadata(Stage):
    """Build the metadata pool from all encoded seeds and give every slot one metadata.

    A global stage (it needs every seed's metadata). Input: ``id``, ``instruction``,
    ``use_case``, ``skills`` (from ``codeclm_encode``). Output: ``use_case`` and ``skills``
    now hold the slot's assigned metadata, plus ``metadata_id``, ``metadata_origin``
    (``seed`` | ``mixed``), ``seed_id`` and ``seed_instruction`` (the seed whose use case it
    carries). The row is now a slot: its other input columns, which describe a seed that
    need not be the slot's, are dropped. Nothing is rejected.

    Parameters
    ----------
    size : int
        Pool size after mixing (paper: 200).
    max_skills : int
        Most skills in a mixed metadata (the encoder's limit, 3).
    seed : int
        Seeds the mixing and the allocation.
    """

    requires = {"id": pa.string(), "instruction": pa.string(), "use_case": pa.string(), "skills": pa.list_(pa.string())}
    adds = POOL_COLUMNS
    is_global = True

    def __init__(self, *, size: int = 200, max_skills: int = 3, seed: int = 0) -> None:
        for name, v in (("size", size), ("max_skills", max_skills)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                msg = f"{name} must be a positive integer, got {v!r}"
                raise ConfigError(msg)
        self.size, self.max_skills, self.seed = size, max_skills, int(seed)
        self.params = {"size": size, "max_skills": max_skills, "seed": seed}

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema([pa.field("id", pa.string())] + [pa.field(n, t) for n, t in POOL_COLUMNS.items()])

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        seeds = table.select(["id", "instruction", "use_case", "skills"]).to_pylist()
        pool = build_pool(seeds, size=self.size, max_skills=self.max_skills, seed=self.seed)
        idx = allocate(table.num_rows, len(pool), seed=self.seed)
        slots = pa.table({"id": table.column("id").combine_chunks(), **{name: pa.array([pool[i][name] for i in idx], typ) for name, typ in POOL_COLUMNS.items()}})
        return slots, empty_rejected(table.slice(0, 0))
