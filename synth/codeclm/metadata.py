"""CodecLM step 2, the metadata pool: seed metadata augmented by mixing and matching.

Paper (§4.1, A.2): the seeds' metadata are augmented to **200** by combining one seed use
case with one or more skills drawn without replacement from the union of every seed's
skills (the authors then removed unreasonable pairs by hand; ``codeclm_sanity`` offers an
LLM check). Each metadata gets an equal share of the basic instructions.

The stage makes new rows: ``num_rows`` instruction slots (the data size; the paper's main
tables use 2000), each assigned one metadata of the pool, every metadata an equal share
(see :func:`allocate`). Each slot names the seed it came from in ``seed_id`` (the seed
whose metadata it is, or whose use case a mixed metadata took), which is how the frame
accounts for the seed rows (:func:`pipelines.stage.check_rows`).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.stage import Stage, split_by_reason

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
    used are a uniform sample of the pool. A metadata's slots are adjacent, so they land in
    one shard and the decoder writes them as one numbered list (diverse, not repeated).

    >>> idx = allocate(10, 4, seed=0)
    >>> sorted(np.bincount(idx, minlength=4).tolist()), len(set(idx[:3].tolist()))
    ([2, 2, 3, 3], 1)
    >>> len(set(allocate(3, 200, seed=1).tolist()))
    3
    """
    if n_metadata < 1 or n_slots < 1:
        return np.zeros(0, dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(n_metadata)
    counts = n_slots // n_metadata + (np.arange(n_metadata) < n_slots % n_metadata)
    return np.repeat(perm, counts)


def slot_ids(metadata_ids: Sequence[str]) -> list[str]:
    """A stable id per slot: its metadata and its rank among that metadata's slots (never
    the generated text, which can vary with vLLM's batching).

    >>> a, b, c = slot_ids(["m1", "m1", "m2"])
    >>> a != b and len(a) == 16 and slot_ids(["m2"])[0] == c
    True
    """
    seen: dict[str, int] = {}
    out = []
    for m in metadata_ids:
        k = seen.get(m, 0)
        seen[m] = k + 1
        out.append(hashlib.sha1(f"codeclm-slot:{m}:{k}".encode()).hexdigest()[:16])
    return out


def unused_seed_reasons(seeds: Sequence[dict[str, Any]], used: set[str]) -> list[str | None]:
    """Why a seed row made no slot: ``duplicate_metadata:<id>`` (the same metadata as an
    earlier seed, which stands for both) or ``metadata_unused`` (its metadata and skills
    went into the pool, but no slot drew it: fewer slots than metadata). None: it made slots.

    >>> s = [{"id": "a", "use_case": "poetry", "skills": ["rhyme"]}, {"id": "b", "use_case": "Poetry", "skills": ["Rhyme"]},
    ...      {"id": "c", "use_case": "coding", "skills": ["sql"]}]
    >>> unused_seed_reasons(s, {"a"})
    [None, 'duplicate_metadata:a', 'metadata_unused']
    """
    first: dict[str, str] = {}
    out: list[str | None] = []
    for s in seeds:
        mid = metadata_id(s["use_case"], s["skills"])
        first.setdefault(mid, s["id"])
        if s["id"] in used:
            out.append(None)
        elif first[mid] != s["id"] and first[mid] in used:
            out.append(f"duplicate_metadata:{first[mid]}")
        else:
            out.append("metadata_unused")
    return out


class CodecMetadata(Stage):
    """Build the metadata pool from all encoded seeds and make ``num_rows`` instruction slots.

    A global stage (it needs every seed's metadata) that makes new rows. Input: ``id``,
    ``instruction``, ``use_case``, ``skills`` (from ``codeclm_encode``). Output, one row per
    slot: a new ``id``, the slot's ``use_case`` and ``skills``, ``metadata_id``,
    ``metadata_origin`` (``seed`` | ``mixed``), ``seed_id`` and ``seed_instruction`` (the
    seed it came from). Seed rows that made no slot are rejected:
    ``duplicate_metadata:<seed id>`` or ``metadata_unused``.

    Parameters
    ----------
    size : int
        Pool size after mixing (paper: 200).
    num_rows : int, optional
        Instruction slots to make, the data size (paper: 500-8000, 2000 in the main
        tables); default one per seed row.
    max_skills : int
        Most skills in a mixed metadata (the encoder's limit, 3).
    seed : int
        Seeds the mixing and the allocation.
    """

    requires = {"id": pa.string(), "instruction": pa.string(), "use_case": pa.string(), "skills": pa.list_(pa.string())}
    adds = POOL_COLUMNS
    is_global = True
    parent = "seed_id"

    def __init__(self, *, size: int = 200, num_rows: int | None = None, max_skills: int = 3, seed: int = 0) -> None:
        for name, v in (("size", size), ("max_skills", max_skills), ("num_rows", 1 if num_rows is None else num_rows)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                msg = f"{name} must be a positive integer, got {v!r}"
                raise ConfigError(msg)
        self.size, self.num_rows, self.max_skills, self.seed = size, num_rows, max_skills, int(seed)
        self.params = {"size": size, "num_rows": num_rows, "max_skills": max_skills, "seed": seed}

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema([pa.field("id", pa.string())] + [pa.field(n, t) for n, t in POOL_COLUMNS.items()])

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        seeds = table.select(["id", "instruction", "use_case", "skills"]).to_pylist()
        pool = build_pool(seeds, size=self.size, max_skills=self.max_skills, seed=self.seed)
        idx = allocate(self.num_rows or table.num_rows, len(pool), seed=self.seed)
        cols = {name: pa.array([pool[i][name] for i in idx], typ) for name, typ in POOL_COLUMNS.items()}
        slots = pa.table({"id": pa.array(slot_ids(cols["metadata_id"].to_pylist()), pa.string()), **cols})
        used = set(cols["seed_id"].to_pylist())
        return slots, split_by_reason(table, unused_seed_reasons(seeds, used))[1]
