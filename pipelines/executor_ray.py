"""Ray Data executor: the same steps and run-store layout as :mod:`pipelines.executor`, on a cluster.

* The source becomes a Ray dataset with one block per shard (``batch_size`` rows, the local
  executor's shards). Each row carries its shard number and the shard's row count, so a task
  always sees whole shards (a split shard is an error, never a torn shard on disk).
* Consecutive non-global stages become ``map_batches(..., batch_format="pyarrow")`` steps:
  CPU stages as tasks, LLM stages as actor pools holding one engine each, loaded in the actor
  (``load_backend`` in that process, no engine worker inside it), ``num_gpus`` per actor
  when the cluster has GPUs (``tensor_parallel_size`` of them), as many actors as the engine's
  ``data_parallel`` (the recipe's ``llm.data_parallel``). Every task writes its shard to the
  run store (``StageDir.write_shard``) and skips shards already done, so a killed job resumes
  with the same command; rows in = kept + rejected is checked per (stage, shard) by
  :func:`pipelines.executor.apply_stage`.
* Global stages run once, after everything upstream: ``minhash_dedup`` as a distributed job
  (:mod:`filters.dedup.minhash_ray`); any other in one Ray task that gathers only the columns
  the stage declares (``requires``, ``id``, its ``embedding_column``: k x d floats for the
  embedding selections) plus the row index, never on the driver. Their output is written as
  the local executor's: chunks of ``batch_size`` kept rows (reassembled from the upstream shards
  in tasks, one per chunk), ``rejected/global.parquet`` and the marker listing the chunks, last.

Limits: a generic global stage's declared columns must fit one worker's memory (the text
columns too, when the stage needs text, as ``deita_select`` without an embedding column does);
the driver holds one int64 row index per kept row of a global stage (8 MB per million rows),
MinHash's duplicates (one row each) and its verified edge list up to ``driver_edges_max`` edges
(past that, components are resolved by distributed label propagation). The run directory (``--out``) must be on a filesystem every node
sees (NFS, a mounted bucket) when the cluster has several machines.
"""
from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.errors import AligncraftError, MissingDependencyError, StageError
from pipelines.executor import Step, _worker_stage, apply_stage
from pipelines.run_store import (
    StageDir,
    atomic_write_bytes,
    atomic_write_table,
    shard_stats,
)

log = logging.getLogger("aligncraft")

MARK, COUNT, EMPTY = "__aligncraft_shard", "__aligncraft_rows", "__aligncraft_empty"
ROW = "__row"
_ENV = ("VLLM_", "HF_", "TOKENIZERS_PARALLELISM", "ALIGNCRAFT_", "CUDA_")


# -- shards as dataset rows ---------------------------------------------------------------
def mark(table: pa.Table, shard: int) -> pa.Table:
    """``table`` tagged with its shard; an empty shard becomes one marker-only row (Ray never
    calls a map function on an empty block, and the next stage must still write the shard)."""
    if table.num_rows == 0:
        return pa.table({MARK: pa.array([shard], pa.int64()), COUNT: pa.array([0], pa.int64()), EMPTY: pa.array([True])})
    n = table.num_rows
    return table.append_column(MARK, pa.array(np.full(n, shard), pa.int64())).append_column(COUNT, pa.array(np.full(n, n), pa.int64())).append_column(EMPTY, pa.array(np.zeros(n, bool)))


def split_shards(batch: pa.Table, stage: str) -> list[tuple[int, pa.Table | None]]:
    """The whole shards in a batch, as ``(shard, rows)``; ``None`` for an empty shard."""
    shards = batch.column(MARK).to_numpy()
    out = []
    for shard in dict.fromkeys(shards.tolist()):
        part = batch.filter(pa.array(shards == shard))
        data = part.drop_columns([MARK, COUNT, EMPTY])
        if part.column(EMPTY)[0].as_py():
            out.append((int(shard), None))
            continue
        expected = part.column(COUNT)[0].as_py()
        if part.num_rows != expected:
            msg = f"Ray delivered {part.num_rows} of shard {shard}'s {expected} rows in one batch (a split block); nothing was written for it"
            raise StageError(stage, int(shard), msg)
        out.append((int(shard), data))
    return out


def _concat(tables: list[pa.Table]) -> pa.Table:
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


def _process_shards(stage_fn: Callable[[], Any], batch: pa.Table, *, spec: Any, path: str, prev: str | None, source_schema: pa.Schema) -> pa.Table:
    sd = StageDir.at(path, spec.name)
    out = []
    for shard, table in split_shards(batch, spec.name):
        if sd.shard_done(shard):
            kept = sd.read_kept(shard)
        else:
            if table is None:
                table = StageDir.at(prev).read_kept(shard) if prev else source_schema.empty_table()
            kept, rejected, stats = apply_stage(spec.name, stage_fn(), table, shard)
            sd.write_shard(shard, kept, rejected, stats)
        out.append(mark(kept, shard))
    return _concat(out)


def _cpu_shards(batch: pa.Table, *, spec: Any, path: str, prev: str | None, source_schema: pa.Schema) -> pa.Table:
    """A CPU stage as a Ray task; the built stage is cached per worker process."""
    def build() -> Any:
        try:
            return _worker_stage(spec)
        except AligncraftError:
            raise
        except Exception as exc:
            raise StageError(spec.name, None, exc, traceback.format_exc()) from exc

    return _process_shards(build, batch, spec=spec, path=path, prev=prev, source_schema=source_schema)


class LLMShards:
    """An LLM stage in a Ray actor: one engine, loaded here in-process by the stage's
    ``load()`` (``synth.backends.llm.load_backend``; no engine-worker pool in the actor)."""

    def __init__(self, *, spec: Any, path: str, prev: str | None, source_schema: pa.Schema) -> None:
        from synth.backends import llm as llm_mod

        llm_mod.use_pool(None)
        self.kw = {"spec": spec, "path": path, "prev": prev, "source_schema": source_schema}
        try:
            self.stage = spec.build()
            self.stage.load()
        except AligncraftError:
            raise
        except Exception as exc:
            raise StageError(spec.name, None, exc, traceback.format_exc()) from exc

    def __call__(self, batch: pa.Table) -> pa.Table:
        return _process_shards(lambda: self.stage, batch, **self.kw)


def _summary(batch: pa.Table) -> pa.Table:
    shards = batch.column(MARK).to_numpy()
    uniq = np.unique(shards)
    return pa.table({"shard": pa.array(uniq, pa.int64())})


# -- global stages ------------------------------------------------------------------------
def _kept_path(sd: StageDir, shard: int) -> str:
    marker = sd.path / "stats" / "global.json"
    if marker.is_file():
        return str(sd.path / "kept" / json.loads(marker.read_text())["chunks"][shard])
    return str(sd.path / "kept" / f"{shard:05d}.parquet")


class Inputs:
    """A global stage's input: the previous stage's kept shards, or the source's shards."""

    def __init__(self, prev: str | None, shards: list[int], source_refs: list[Any] | None) -> None:
        self.prev, self.shards, self.refs = prev, shards, source_refs

    def read(self, k: int) -> pa.Table:
        if self.prev is None:
            import ray

            return ray.get(self.refs[k])  # type: ignore[index]
        return StageDir.at(self.prev).read_kept(self.shards[k])

    def rows_and_schema(self) -> tuple[np.ndarray, pa.Schema]:
        if self.prev is None:
            import ray

            tables = ray.get(list(self.refs))  # type: ignore[arg-type]
            counts, schemas = [t.num_rows for t in tables], [t.schema for t in tables]
        else:
            sd = StageDir.at(self.prev)
            meta = [pq.read_metadata(_kept_path(sd, s)) for s in self.shards]
            counts, schemas = [m.num_rows for m in meta], [m.schema.to_arrow_schema() for m in meta]
        schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), schema.remove_metadata()

    def projected(self, k: int, offsets: np.ndarray, columns: list[str]) -> pa.Table:
        t = self.read(k)
        t = t.select([c for c in columns if c in t.column_names])
        return t.append_column(ROW, pa.array(np.arange(offsets[k], offsets[k + 1]), pa.int64()))


def apply_columns(schema: pa.Schema, proj: pa.Schema, projected: list[str]) -> pa.Schema:
    """The output schema: input columns, minus projected ones the stage dropped, with the
    stage's columns replaced in place or appended (as ``set_column`` does)."""
    names = set(proj.names)
    fields = [f for f in schema if not (f.name in projected and f.name not in names)]
    out = pa.schema(fields)
    for f in proj:
        if f.name == ROW:
            continue
        i = out.get_field_index(f.name)
        out = out.set(i, f) if i >= 0 else out.append(f)
    return out


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = []
    for f in schema:
        if f.name in table.column_names:
            c = table.column(f.name)
            cols.append(c if c.type == f.type else c.cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def assemble(proj: pa.Table, inputs: Inputs, offsets: np.ndarray, schema: pa.Schema) -> pa.Table:
    """Full rows for ``proj``'s row indices (in its order), with its columns applied."""
    rows = proj.column(ROW).to_numpy()
    shard_of = np.searchsorted(offsets, rows, side="right") - 1
    parts, where = [], []
    for k in np.unique(shard_of):
        sel = np.nonzero(shard_of == k)[0]
        parts.append(inputs.read(int(k)).take(pa.array(rows[sel] - offsets[k])))
        where.append(sel)
    if not parts:
        return schema.empty_table()
    full = _concat(parts)
    order = np.empty(len(rows), np.int64)
    order[np.concatenate(where)] = np.arange(len(rows))
    full = full.take(pa.array(order))
    for name in proj.column_names:
        if name == ROW:
            continue
        i = full.schema.get_field_index(name)
        full = full.set_column(i, name, proj.column(name)) if i >= 0 else full.append_column(name, proj.column(name))
    return _conform(full, schema)


def _write_chunk(proj: pa.Table, start: int, length: int, inputs: Inputs, offsets: np.ndarray, schema: pa.Schema, dest: str) -> int:
    table = assemble(proj.slice(start, length), inputs, offsets, schema)
    atomic_write_table(__import__("pathlib").Path(dest), table)
    return table.num_rows


def _global_task(spec: Any, inputs: Inputs, columns: list[str]) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """A global stage on the columns it declares, in one Ray task (not on the driver)."""
    offsets, _ = inputs.rows_and_schema()
    tables = [inputs.projected(k, offsets, columns) for k in range(len(inputs.shards))]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({ROW: pa.array([], pa.int64())})
    try:
        stage = spec.build()
        stage.load()
    except AligncraftError:
        raise
    except Exception as exc:
        raise StageError(spec.name, None, exc, traceback.format_exc()) from exc
    kept, rejected, stats = apply_stage(spec.name, stage, table, "global")
    for t in (kept, rejected):
        if t.num_rows and ROW not in t.column_names:
            raise StageError(spec.name, None, f"the stage dropped the row index column '{ROW}', which the Ray executor needs to reassemble rows; run it with --executor local")
    return kept, rejected, stats


# -- the executor -------------------------------------------------------------------------
def _unwrap(exc: BaseException) -> BaseException:
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, AligncraftError):
            return e
        e = getattr(e, "cause", None) or e.__cause__
    return exc


class RayExecutor:
    """Runs :class:`~pipelines.executor.Step` s on Ray Data with the local executor's run store.

    Parameters
    ----------
    steps, batch_size, progress, on_stage_done
        As :class:`pipelines.executor.Executor`.
    address
        ``None`` starts a local Ray instance (or uses the one this process already runs);
        ``"auto"`` or ``HOST:PORT`` joins a running cluster.
    driver_edges_max
        MinHash's verified edges resolved on the driver up to this many, by distributed label
        propagation past it (default: ``$ALIGNCRAFT_RAY_DRIVER_EDGES_MAX``, else
        :data:`filters.dedup.minhash_ray.DRIVER_EDGES_MAX`, 5 million).
    """

    def __init__(self, steps: list[Step], *, batch_size: int, address: str | None = None, progress: bool = True, on_stage_done: Callable[[Step], None] | None = None,
                 driver_edges_max: int | None = None, **_: Any) -> None:
        self.steps, self.batch_size, self.address = steps, batch_size, address
        if driver_edges_max is None and os.environ.get("ALIGNCRAFT_RAY_DRIVER_EDGES_MAX"):
            driver_edges_max = int(os.environ["ALIGNCRAFT_RAY_DRIVER_EDGES_MAX"])
        self.driver_edges_max = driver_edges_max
        self.progress, self.on_stage_done = progress, on_stage_done

    def _init(self) -> bool:
        try:
            import ray
        except ImportError:
            raise MissingDependencyError("ray", extra="ray", purpose="--executor ray") from None
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = self.progress
        ctx.target_max_block_size = 1 << 34  # shards stay whole blocks
        if ray.is_initialized():
            return False
        env = {k: v for k, v in os.environ.items() if k.startswith(_ENV)}
        ray.init(address=self.address, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env}, logging_level="WARNING")
        return True

    def run(self, source: pa.Table) -> StageDir | None:
        import ray

        started = self._init()
        try:
            n_shards = max(1, -(-source.num_rows // self.batch_size))
            refs = [ray.put(source.slice(s * self.batch_size, self.batch_size)) for s in range(n_shards)]
            shards, prev = list(range(n_shards)), None
            last: StageDir | None = None
            i = 0
            while i < len(self.steps):
                if self.steps[i].stage.is_global:
                    step = self.steps[i]
                    self._run_global(step, Inputs(str(prev.path.resolve()) if prev else None, shards, None if prev else refs))
                    i += 1
                else:
                    j = i
                    while j < len(self.steps) and not self.steps[j].stage.is_global:
                        j += 1
                    self._run_segment(self.steps[i:j], shards, prev, refs, source.schema)
                    step, i = self.steps[j - 1], j
                last = prev = step.dir
                shards = last.kept_shards()
            return last
        except Exception as exc:
            real = _unwrap(exc)
            if real is not exc:
                raise real from None
            raise
        finally:
            if started:
                ray.shutdown()

    def _run_segment(self, seg: list[Step], shards: list[int], prev: StageDir | None, refs: list[Any], source_schema: pa.Schema) -> None:
        import ray
        import ray.data

        todo = [s for s in shards if not all(st.dir.shard_done(s) for st in seg)]
        if todo:
            t0 = time.perf_counter()
            if prev is None:
                ds = ray.data.from_arrow_refs([ray.put(mark(ray.get(refs[s]), s)) for s in todo])
            else:
                ds = ray.data.from_arrow_refs([_read_marked.remote(str(prev.path.resolve()), s) for s in todo])
            gpus = float(ray.cluster_resources().get("GPU", 0))
            prev_path = str(prev.path.resolve()) if prev else None
            for step in seg:
                kw = {"spec": step.spec, "path": str(step.dir.path.resolve()), "prev": prev_path, "source_schema": source_schema}
                if step.stage.needs_llm:
                    engine = getattr(step.stage, "engine", {}) or {}
                    actors = max(1, int(engine.get("data_parallel", 1)))
                    per = float(engine.get("tensor_parallel_size", 1)) if gpus else 0.0
                    ds = ds.map_batches(LLMShards, batch_size=None, batch_format="pyarrow", fn_constructor_kwargs=kw, compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=per)
                else:
                    ds = ds.map_batches(_cpu_shards, batch_size=None, batch_format="pyarrow", fn_kwargs=kw)
                prev_path = kw["path"]
            done = sum(b.num_rows for b in ds.map_batches(_summary, batch_size=None, batch_format="pyarrow").iter_batches(batch_size=None, batch_format="pyarrow"))
            log.info("ray: stages %s: %d shards in %.1f s", ", ".join(s.spec.name for s in seg), done, time.perf_counter() - t0)
        for step in seg:
            self._finish(step)

    def _run_global(self, step: Step, inputs: Inputs) -> None:
        import ray

        if step.dir.shard_done("global"):
            self._finish(step)
            return
        t0 = time.perf_counter()
        offsets, schema = inputs.rows_and_schema()
        from filters.dedup.minhash import MinHashDedup

        if isinstance(step.stage, MinHashDedup):
            kept_ref, rej_ref, stats, proj_schema, projected = self._minhash(step, inputs, offsets, schema)
        else:
            st = step.stage
            columns = [c for c in dict.fromkeys(["id", *st.requires, st.params.get("embedding_column") or ""]) if c and c in schema.names]
            gpu = 1.0 if st.needs_llm and ray.cluster_resources().get("GPU", 0) else 0.0
            task = ray.remote(_global_task).options(num_returns=3, num_gpus=gpu)
            kept_ref, rej_ref, stats_ref = task.remote(step.spec, inputs, columns)
            stats = ray.get(stats_ref)
            proj_schema = ray.get(ray.remote(lambda t: t.schema).remote(kept_ref))
            projected = columns
        out_schema = apply_columns(schema, proj_schema, projected)
        rej_schema = apply_columns(schema, ray.get(ray.remote(lambda t: t.schema).remote(rej_ref)), projected)
        import uuid

        token = uuid.uuid4().hex[:8]
        n = max(1, -(-stats["kept"] // self.batch_size))
        chunks = [f"global-{token}-{k:05d}.parquet" for k in range(n)]
        write = ray.remote(_write_chunk)
        jobs = [write.remote(kept_ref, k * self.batch_size, self.batch_size, inputs, offsets, out_schema, str(step.dir.path.resolve() / "kept" / name)) for k, name in enumerate(chunks)]
        jobs.append(write.remote(rej_ref, 0, max(1, stats["rejected"]), inputs, offsets, rej_schema, str(step.dir.path.resolve() / "rejected" / "global.parquet")))
        ray.get(jobs)
        stats = {**stats, "seconds": round(time.perf_counter() - t0, 3)}
        atomic_write_bytes(step.dir.path / "stats" / "global.json", json.dumps({**stats, "chunks": chunks}).encode())
        for stale in (step.dir.path / "kept").glob("*.parquet"):
            if stale.name not in chunks:
                stale.unlink(missing_ok=True)
        log.info("ray: global stage %s: %d in, %d kept in %.1f s", step.spec.name, stats["rows_in"], stats["kept"], stats["seconds"])
        self._finish(step)

    def _minhash(self, step: Step, inputs: Inputs, offsets: np.ndarray, schema: pa.Schema) -> tuple[Any, Any, dict[str, Any], pa.Schema, list[str]]:
        import ray
        import ray.data

        from filters.dedup.minhash_ray import DRIVER_EDGES_MAX, ray_duplicates
        from pipelines.stage import RAW, REASON

        st = step.stage
        p = st.params
        columns = [c for c in dict.fromkeys(["id", *st.columns, p["keep"]]) if c in schema.names]
        t0 = time.perf_counter()
        ds = ray.data.from_arrow_refs([_read_projected.remote(inputs, k, offsets, columns) for k in range(len(inputs.shards))])
        try:
            dups = ray_duplicates(ds, columns=st.columns, shingle=p["shingle"], ngram=p["ngram"], num_perm=p["num_perm"], seed=p["seed"],
                                  bands=p["bands"], rows=p["rows"], threshold=p["threshold"], keep=p["keep"],
                                  driver_edges_max=DRIVER_EDGES_MAX if self.driver_edges_max is None else self.driver_edges_max)
        except AligncraftError:
            raise
        except Exception as exc:
            real = _unwrap(exc)
            if isinstance(real, AligncraftError):
                raise real from None
            raise StageError(step.spec.name, None, exc, traceback.format_exc()) from exc
        dups = dups.sort_by("row")
        total = int(offsets[-1])
        dup_rows = dups.column("row").to_numpy()
        kept = pa.table({ROW: pa.array(np.setdiff1d(np.arange(total, dtype=np.int64), dup_rows, assume_unique=True), pa.int64())})
        reasons = pc.binary_join_element_wise("duplicate_of:", dups.column("keeper_id"), "")
        rejected = pa.table({ROW: dups.column("row"), REASON: reasons, RAW: pa.nulls(dups.num_rows, pa.string())})
        stats = shard_stats(step.spec.name, "global", total, kept, rejected, time.perf_counter() - t0)
        return ray.put(kept), ray.put(rejected), stats, kept.schema, []

    def _finish(self, step: Step) -> None:
        if self.on_stage_done:
            self.on_stage_done(step)


def _remote(fn: Callable) -> Any:
    import ray

    return ray.remote(fn)


class _Lazy:
    """``fn.remote(...)`` for a module-level function, made a Ray task on first use (ray is
    optional: importing this module must not need it)."""

    def __init__(self, fn: Callable) -> None:
        self.fn, self.task = fn, None

    def remote(self, *args: Any) -> Any:
        if self.task is None:
            self.task = _remote(self.fn)
        return self.task.remote(*args)


def _read_marked_fn(path: str, shard: int) -> pa.Table:
    return mark(StageDir.at(path).read_kept(shard), shard)


def _read_projected_fn(inputs: Inputs, k: int, offsets: np.ndarray, columns: list[str]) -> pa.Table:
    return inputs.projected(k, offsets, columns)


_read_marked = _Lazy(_read_marked_fn)
_read_projected = _Lazy(_read_projected_fn)
