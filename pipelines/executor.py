"""Local streaming executor.

Shards flow source -> stage 1 -> stage 2 ...; stages run in order on each shard, and
consecutive non-global stages form a streaming segment. LLM stages run in this process,
which owns the engine and feeds it a whole shard per call; the CPU stages after the last
LLM stage of a segment run at the same time in worker processes on finished shards (a
bounded number in flight gives back-pressure). Global stages start once everything
upstream is finished. Output order is the shard order, whatever finishes first.

Every stage's output is written to the run store shard by shard, so a killed run resumes
where it stopped; every (stage, shard) is checked for rows in = kept + rejected.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import time
import traceback
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pyarrow as pa

from pipelines.errors import AligncraftError, StageError
from pipelines.pipeline import StageSpec
from pipelines.run_store import StageDir, shard_stats
from pipelines.stage import REASON, Stage

log = logging.getLogger("aligncraft")


@dataclass
class Step:
    index: int
    spec: StageSpec
    stage: Stage
    dir: StageDir


def apply_stage(spec_name: str, stage: Stage, table: pa.Table, shard: int | str) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Run one stage on one batch, enforcing the contract (rows in = kept + rejected)."""
    t0 = time.perf_counter()
    try:
        kept, rejected = stage.process(table)
    except AligncraftError as exc:
        raise StageError(spec_name, shard if isinstance(shard, int) else None, exc.format_message(), traceback.format_exc()) from exc
    except Exception as exc:  # noqa: BLE001 - a bug in a stage: keep the traceback
        raise StageError(spec_name, shard if isinstance(shard, int) else None, exc, traceback.format_exc()) from exc
    if kept.num_rows + rejected.num_rows != table.num_rows:
        raise StageError(spec_name, shard if isinstance(shard, int) else None, f"row accounting violated: {table.num_rows} rows in, {kept.num_rows} kept + {rejected.num_rows} rejected")
    if rejected.num_rows and REASON not in rejected.column_names:
        raise StageError(spec_name, shard if isinstance(shard, int) else None, f"rejected rows carry no '{REASON}' column (use pipelines.stage.rejected_rows)")
    stats = shard_stats(spec_name, shard, table.num_rows, kept, rejected, time.perf_counter() - t0)
    return kept, rejected, stats


# -- worker side -------------------------------------------------------------------
_WORKER_STAGES: dict[str, Stage] = {}


def _worker_stage(spec: StageSpec) -> Stage:
    import json

    key = json.dumps([spec.type, spec.params], sort_keys=True, default=str)
    st = _WORKER_STAGES.get(key)
    if st is None:
        st = spec.build()
        st.load()
        _WORKER_STAGES[key] = st
    return st


def _run_chain(specs: list[StageSpec], dirs: list[tuple[str, str, str]], shard: int, table: pa.Table | None, input_dir: tuple[str, str, str] | None) -> list[dict[str, Any]]:
    """Run consecutive CPU stages on one shard in a worker process; returns their stats."""
    import logging as _logging

    _logging.basicConfig(level=_logging.WARNING)
    out = []
    if table is None:
        assert input_dir is not None
        table = StageDir.at(input_dir[0]).read_kept(shard)
    for spec, (path, _, _) in zip(specs, dirs):
        sd = StageDir.at(path, spec.name)
        if sd.shard_done(shard):
            table = sd.read_kept(shard)
            continue
        kept, rejected, stats = apply_stage(spec.name, _worker_stage(spec), table, shard)
        sd.write_shard(shard, kept, rejected, stats)
        out.append(stats)
        table = kept
    return out


# -- main side ---------------------------------------------------------------------
class Executor:
    def __init__(self, steps: list[Step], *, batch_size: int, workers: int = 1, debug: bool = False, progress: bool = True, on_stage_done: Callable[[Step], None] | None = None) -> None:
        self.steps = steps
        self.batch_size = batch_size
        self.workers = 0 if debug else max(0, workers)
        self.debug = debug
        self.progress = progress
        self.on_stage_done = on_stage_done
        self._loaded: set[int] = set()
        self._bars: dict[int, Any] = {}

    def run(self, source: pa.Table) -> StageDir | None:
        shards: list[int] = list(range(max(1, -(-source.num_rows // self.batch_size))))
        def get_input(s: int) -> pa.Table:
            return source.slice(s * self.batch_size, self.batch_size)

        last: StageDir | None = None
        i = 0
        try:
            while i < len(self.steps):
                if self.steps[i].stage.is_global:
                    step = self.steps[i]
                    self._run_global(step, shards, get_input)
                    i += 1
                else:
                    j = i
                    while j < len(self.steps) and not self.steps[j].stage.is_global:
                        j += 1
                    self._run_segment(self.steps[i:j], shards, get_input, total_rows=source.num_rows if i == 0 else None)
                    step = self.steps[j - 1]
                    i = j
                last = step.dir
                shards = last.kept_shards()
                get_input = last.read_kept  # type: ignore[assignment]
        finally:
            for bar in self._bars.values():
                bar.close()
        return last

    # -- pieces ----------------------------------------------------------------------
    def _bar(self, step: Step, total: int | None) -> Any:
        if step.index not in self._bars:
            from tqdm.auto import tqdm

            self._bars[step.index] = tqdm(total=total, desc=f"{step.spec.name:>16}", unit="row", disable=not self.progress, dynamic_ncols=True, leave=True)
        return self._bars[step.index]

    def _load(self, step: Step) -> None:
        if step.index not in self._loaded:
            log.info("loading stage '%s' (%s)", step.spec.name, step.spec.type)
            try:
                step.stage.load()
            except AligncraftError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise StageError(step.spec.name, None, exc, traceback.format_exc()) from exc
            self._loaded.add(step.index)

    def _inline(self, step: Step, shard: int, table: pa.Table) -> pa.Table:
        self._load(step)
        kept, rejected, stats = apply_stage(step.spec.name, step.stage, table, shard)
        step.dir.write_shard(shard, kept, rejected, stats)
        self._bar(step, None).update(stats["rows_in"])
        return kept

    def _run_segment(self, seg: list[Step], shards: list[int], get_input: Callable[[int], pa.Table], total_rows: int | None) -> None:
        last_llm = max((k for k, s in enumerate(seg) if s.stage.needs_llm), default=-1)
        tail_from = len(seg) if self.workers == 0 else last_llm + 1
        head, tail = seg[:tail_from], seg[tail_from:]
        for s in seg:
            self._bar(s, total_rows)
        pool = None
        pending: deque[tuple[int, Future]] = deque()
        if tail and any(not s.dir.shard_done(sh) for s in tail for sh in shards):
            pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"))
        try:
            for shard in shards:
                table: pa.Table | None = None
                prev_dir: StageDir | None = None
                for step in head:
                    if step.dir.shard_done(shard):
                        table, prev_dir = None, step.dir
                        continue
                    if table is None:
                        table = prev_dir.read_kept(shard) if prev_dir else get_input(shard)
                    table = self._inline(step, shard, table)
                    prev_dir = step.dir
                if not tail or all(s.dir.shard_done(shard) for s in tail):
                    continue
                if table is None and prev_dir is None:
                    table = get_input(shard)
                specs = [s.spec for s in tail]
                dirs = [(str(s.dir.path), s.spec.name, s.dir.fp) for s in tail]
                inp = None if table is not None else (str(prev_dir.path), "", "")  # type: ignore[union-attr]
                pending.append((shard, pool.submit(_run_chain, specs, dirs, shard, table, inp)))  # type: ignore[union-attr]
                while len(pending) > 2 * self.workers:
                    self._collect(tail, *pending.popleft())
            while pending:
                self._collect(tail, *pending.popleft())
        except BaseException:
            for _, f in pending:
                f.cancel()
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        for s in seg:
            self._finish(s)

    def _collect(self, tail: list[Step], shard: int, fut: Future) -> None:
        try:
            stats = fut.result()
        except StageError:
            raise
        except Exception as exc:  # noqa: BLE001 - a crash of the worker process itself
            raise StageError(tail[0].spec.name, shard, exc, traceback.format_exc()) from exc
        by_name = {s["stage"]: s for s in stats}
        for step in tail:
            if step.spec.name in by_name:
                self._bar(step, None).update(by_name[step.spec.name]["rows_in"])

    def _run_global(self, step: Step, shards: Iterable[int], get_input: Callable[[int], pa.Table]) -> None:
        if step.dir.shard_done("global"):
            self._finish(step)
            return
        tables = [get_input(s) for s in shards]
        table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
        self._load(step)
        bar = self._bar(step, table.num_rows)
        kept, rejected, stats = apply_stage(step.spec.name, step.stage, table, "global")
        bs = self.batch_size
        n = max(1, -(-kept.num_rows // bs))
        from pipelines.run_store import atomic_write_bytes, atomic_write_table
        import json

        for k in range(n):
            atomic_write_table(step.dir.path / "kept" / f"{k:05d}.parquet", kept.slice(k * bs, bs))
        atomic_write_table(step.dir.path / "rejected" / "global.parquet", rejected)
        atomic_write_bytes(step.dir.path / "stats" / "global.json", json.dumps(stats).encode())
        bar.update(table.num_rows)
        self._finish(step)

    def _finish(self, step: Step) -> None:
        if self.on_stage_done:
            self.on_stage_done(step)
