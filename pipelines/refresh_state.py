"""The state folder of ``aligncraft refresh``: committed versions, ``latest``, the lock.

Layout::

    STATE/state.json             the committed history (recipe, near-dup settings, versions)
    STATE/latest -> versions/V   a symlink, switched atomically (``os.replace`` of a temp link)
    STATE/versions/V/            one release: README.md (card), refresh.json, data/, rejected/,
                                 state/inputs.parquet (content ids of the inputs V consumed),
                                 state/release.parquet (id + MinHash signature of each row V added)
    STATE/work/                  the version being made: pending.json, input.parquet, out/ (the run)
    STATE/.refresh.lock          held (flock) while a refresh runs; the kernel frees it on SIGKILL

``state.json`` is the single commit point. A version is made in ``work/`` (a resumable
``aligncraft run``), assembled in ``versions/.V.tmp``, renamed to ``versions/V``, then listed
in ``state.json`` (atomic replace), and only then does ``latest`` move. A kill before the
listing leaves an unlisted folder that the next refresh rebuilds from ``work/``; a kill after
it leaves ``latest`` one version behind, which the next refresh moves on. So ``latest`` only
ever names a complete, listed version.

A state folder that does not add up (``state.json`` unreadable, a listed file missing or with
another checksum, a version folder no one listed) raises :class:`StateError`: a refresh never
silently starts over, which would re-run and re-release every input.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import AligncraftError, ConfigError
from pipelines.run_store import atomic_write_bytes, fsync_dir

__all__ = ["RefreshBusyError", "State", "StateError", "input_content_ids", "load_state", "switch_latest", "take_refresh_lock"]

FORMAT = "aligncraft-refresh/1"
# content ids: sha1 of the row as canonical JSON (sorted keys, nulls dropped), 16 hex chars
CONTENT_ID = "sha1-json-nonull-16"
LOCK_NAME = ".refresh.lock"
OWNER_NAME = ".refresh.owner"


class RefreshBusyError(AligncraftError):
    """Another refresh holds the state folder's lock. Exit code 75 (``EX_TEMPFAIL``): try later."""

    exit_code = 75


class StateError(AligncraftError):
    """The state folder is damaged; the refresh stops instead of starting over."""

    exit_code = 3


def take_refresh_lock(root: Path) -> Any:
    """Hold ``STATE/.refresh.lock`` or raise :class:`RefreshBusyError` at once (no waiting:
    a cron job that finds the last night's refresh still running must not queue behind it)."""
    from filelock import FileLock, Timeout

    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / LOCK_NAME), is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = ""
        try:
            o = json.loads((root / OWNER_NAME).read_text())
            owner = f" (pid {o['pid']}, started {o['started']})"
        except (OSError, ValueError, KeyError, TypeError):
            pass
        msg = f"another aligncraft refresh is running on {root}{owner}"
        raise RefreshBusyError(msg, hint="this one exits without waiting; the next scheduled run picks up whatever is still new") from None
    atomic_write_bytes(root / OWNER_NAME, json.dumps({"pid": os.getpid(), "started": utc_now()}).encode())
    return lock


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def version_name(when: float | None = None) -> str:
    """A dated version name that sorts in time order: ``2025-06-01T031500Z``.

    >>> version_name(0.0)
    '1970-01-01T000000Z'
    """
    return time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime(time.time() if when is None else when))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _no_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _no_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_no_nulls(x) for x in v]
    return v


def input_content_ids(table: pa.Table) -> pa.Array:
    """The content id of each input row: sha1 of its canonical JSON, 16 hex characters.

    Keys are sorted and null values dropped (recursively), so a row reads the same whether
    its file had a column the others lacked or not (JSON Lines take the union of all keys,
    filling nulls): the same prompt in last week's file and tonight's has the same id.

    >>> t = pa.table({"instruction": ["hi", "hi"], "input": [None, "x"]})
    >>> ids = input_content_ids(t).to_pylist()
    >>> ids[0] == input_content_ids(pa.table({"instruction": ["hi"]}))[0].as_py(), ids[0] == ids[1]
    (True, False)
    """
    out = [hashlib.sha1(json.dumps(_no_nulls(r), sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[:16] for r in table.to_pylist()]
    return pa.array(out, pa.string())


def _fail(root: Path, what: str) -> StateError:
    hint = f"restore {root} from a backup, or start a new history with another --state (a refresh never starts over by itself: it would re-run and re-release every input)"
    return StateError(f"the refresh state {root} is damaged: {what}", hint=hint)


@dataclass
class State:
    """The committed history of one state folder, checked when loaded."""

    root: Path
    recipe: str | None = None
    near_dup: dict[str, Any] = field(default_factory=dict)
    versions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latest(self) -> str | None:
        return self.versions[-1]["name"] if self.versions else None

    def version_dir(self, name: str) -> Path:
        return self.root / "versions" / name

    def seen_ids(self) -> pa.Array:
        """Content ids of every input an earlier version consumed (kept or not)."""
        import pyarrow.parquet as pq

        parts = [pq.read_table(self.version_dir(v["name"]) / "state" / "inputs.parquet").column("id") for v in self.versions]
        return pa.chunked_array(parts, pa.string()).combine_chunks() if parts else pa.array([], pa.string())

    def release_signatures(self) -> tuple[pa.Array, Any, list[str]]:
        """(row ids, ``(n, num_perm)`` uint32 MinHash signatures, version of each row) of
        every row released so far, read from the state: never recomputed from text."""
        import numpy as np
        import pyarrow.parquet as pq

        num_perm = int(self.near_dup.get("num_perm", 0) or 0)
        ids, sigs, where = [], [], []
        for v in self.versions:
            t = pq.read_table(self.version_dir(v["name"]) / "state" / "release.parquet")
            if t.num_rows == 0:
                continue
            ids.append(t.column("id"))
            sigs.append(t.column("minhash").combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(np.uint32).reshape(t.num_rows, num_perm))
            where += [v["name"]] * t.num_rows
        if not ids:
            return pa.array([], pa.string()), np.zeros((0, num_perm), np.uint32), []
        return pa.chunked_array(ids, pa.string()).combine_chunks(), np.concatenate(sigs), where

    def commit(self, entry: dict[str, Any], near_dup: dict[str, Any]) -> None:
        """List a finished version in ``state.json``: the one atomic commit point."""
        self.versions = [*self.versions, entry]
        self.near_dup = dict(near_dup)
        doc = {"format": FORMAT, "content_id": CONTENT_ID, "recipe": self.recipe, "near_dup": self.near_dup, "versions": self.versions}
        atomic_write_bytes(self.root / "state.json", json.dumps(doc, indent=1).encode())


def read_pending(root: Path) -> dict[str, Any] | None:
    """The version ``work/`` is making, or None. An unreadable ``pending.json`` is damage
    (it is written atomically), not a reason to throw the half-made version away."""
    p = root / "work" / "pending.json"
    if not p.exists():
        return None
    try:
        doc = json.loads(p.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("version"), str):
            raise ValueError("no version name")
    except (OSError, ValueError) as exc:
        raise _fail(root, f"{p} is unreadable ({exc})") from None
    return doc


def load_state(root: Path, *, recipe: str | None = None) -> State:
    """Read ``state.json`` and check that every listed file is there with its checksum.

    ``recipe`` (the name being refreshed) must match the state's: one history per recipe.
    """
    sj = root / "state.json"
    versions_dir = root / "versions"
    pending = read_pending(root)
    if not sj.exists():
        leftovers = sorted(p.name for p in versions_dir.iterdir() if not p.name.startswith(".")) if versions_dir.is_dir() else []
        if pending:
            leftovers = [n for n in leftovers if n != pending["version"]]
        if leftovers or (root / "latest").is_symlink():
            raise _fail(root, f"state.json is missing but versions exist ({', '.join(leftovers) or 'latest'})")
        return State(root, recipe=recipe)
    try:
        doc = json.loads(sj.read_text())
    except (OSError, ValueError) as exc:
        raise _fail(root, f"state.json is unreadable ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("versions"), list):
        raise _fail(root, f"state.json is not an {FORMAT} file")
    if doc.get("content_id") != CONTENT_ID:
        raise _fail(root, f"state.json uses content ids '{doc.get('content_id')}', this aligncraft makes '{CONTENT_ID}'")
    state = State(root, recipe=doc.get("recipe"), near_dup=dict(doc.get("near_dup") or {}), versions=list(doc["versions"]))
    if recipe is not None and state.recipe not in (None, recipe):
        msg = f"{root} holds versions of recipe '{state.recipe}', not '{recipe}'"
        raise ConfigError(msg, hint="use another --state folder for another recipe")
    names = set()
    for v in state.versions:
        if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not isinstance(v.get("files"), dict):
            raise _fail(root, f"state.json has a malformed version entry {str(v)[:80]}")
        names.add(v["name"])
        vdir = state.version_dir(v["name"])
        if not vdir.is_dir():
            raise _fail(root, f"version {v['name']} is listed in state.json but {vdir} is missing")
        for rel, sha in v["files"].items():
            f = vdir / rel
            if not f.is_file():
                raise _fail(root, f"{f} is missing")
            if file_sha256(f) != sha:
                raise _fail(root, f"{f} does not match its checksum in state.json (edited or truncated)")
    if versions_dir.is_dir():
        for p in sorted(versions_dir.iterdir()):
            if p.name.startswith(".") or p.name in names or (pending and p.name == pending["version"]):
                continue
            raise _fail(root, f"{p} is not a version listed in state.json")
    latest = root / "latest"
    if latest.exists() and not latest.is_symlink():
        raise _fail(root, f"{latest} is not a symlink")
    return state


def switch_latest(root: Path, name: str) -> None:
    """Point ``latest`` at ``versions/<name>``: a new symlink renamed over the old one, so a
    reader sees the old target or the new one, never a missing or a partial version."""
    tmp = root / f".latest.tmp{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.join("versions", name), tmp)
    os.replace(tmp, root / "latest")
    fsync_dir(root)


def latest_target(root: Path) -> str | None:
    link = root / "latest"
    return Path(os.readlink(link)).name if link.is_symlink() else None


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished folder into place in one rename (``final`` must not exist)."""
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    fsync_dir(final.parent)


def link_or_copy(src: Path, dst: Path) -> None:
    """A hard link (earlier versions' data shared, not copied), a copy where links fail."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def is_seen(ids: pa.Array, seen: pa.Array) -> pa.Array:
    """Boolean mask: which ``ids`` are in ``seen`` (a hash join, no Python loop)."""
    return pc.fill_null(pc.is_in(ids, value_set=seen), False) if len(seen) else pa.array([False] * len(ids))
