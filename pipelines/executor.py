"""Local streaming executor.

Shards flow source -> stage 1 -> stage 2 ...; stages run in order on each shard, and
consecutive non-global stages form a streaming segment. Global stages start once everything
upstream is finished. Output order is the shard order, whatever finishes first.

LLM stages talk to engine workers (one process per backend + model + engine options, see
``synth.backends.workers``). Several shards are in flight at once, each in its own thread
walking its LLM stages (and the CPU stages between them), so an engine gets the requests of
every shard and every stage that uses it as one continuous batch: the checkpoint size
(``batch_size``) no longer decides the engine's batch. Engines whose memory shares fit
together run side by side; otherwise the segment runs one group of engines at a time over
all shards (stage-major), ending the workers no later stage needs. The CPU stages after the
last LLM stage run in worker processes on finished shards meanwhile (a bounded number in
flight gives back-pressure). ``debug`` runs everything in this process, one shard at a time.

Every stage's output is written to the run store shard by shard, so a killed run resumes
where it stopped; every (stage, shard) is checked for rows in = kept + rejected.
"""
from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import threading
import time
import traceback
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pyarrow as pa

from pipelines.errors import AligncraftError, StageError
from pipelines.pipeline import StageSpec
from pipelines.run_store import StageDir, shard_stats
from pipelines.stage import REASON, Stage, check_rows

log = logging.getLogger("aligncraft")


@dataclass
class Step:
    index: int
    spec: StageSpec
    stage: Stage
    dir: StageDir


def apply_stage(spec_name: str, stage: Stage, table: pa.Table, shard: int | str) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Run one stage on one batch, enforcing the contract (rows in = kept + rejected, see
    :func:`pipelines.stage.check_rows`)."""
    t0 = time.perf_counter()
    try:
        kept, rejected = stage.process(table)
    except AligncraftError as exc:
        raise StageError(spec_name, shard if isinstance(shard, int) else None, exc.format_message(), traceback.format_exc()) from exc
    except Exception as exc:  # noqa: BLE001 - a bug in a stage: keep the traceback
        raise StageError(spec_name, shard if isinstance(shard, int) else None, exc, traceback.format_exc()) from exc
    try:
        consumed = check_rows(table, kept, rejected, stage.parent)
    except ValueError as exc:
        raise StageError(spec_name, shard if isinstance(shard, int) else None, str(exc)) from None
    if rejected.num_rows and REASON not in rejected.column_names:
        raise StageError(spec_name, shard if isinstance(shard, int) else None, f"rejected rows carry no '{REASON}' column (use pipelines.stage.rejected_rows)")
    stats = shard_stats(spec_name, shard, table.num_rows, kept, rejected, time.perf_counter() - t0, consumed=consumed)
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
    def __init__(self, steps: list[Step], *, batch_size: int, workers: int = 1, debug: bool = False, progress: bool = True, on_stage_done: Callable[[Step], None] | None = None, shards_in_flight: int | None = None, log_path: str | None = None) -> None:
        self.steps = steps
        self.batch_size = batch_size
        self.workers = 0 if debug else max(0, workers)
        self.debug = debug
        self.progress = progress
        self.on_stage_done = on_stage_done
        # enough shards in flight to keep ~2 x max_num_seqs (2 x 256) requests in an engine
        self.shards_in_flight = max(1, shards_in_flight or min(16, max(2, -(-512 // batch_size) + 1)))
        self.log_path = log_path
        self.pool: Any = None
        self._own_pool = True
        self._loaded: set[int] = set()
        self._load_lock = threading.Lock()
        self._bars: dict[int, Any] = {}

    def run(self, source: pa.Table) -> StageDir | None:
        shards: list[int] = list(range(max(1, -(-source.num_rows // self.batch_size))))
        def get_input(s: int) -> pa.Table:
            return source.slice(s * self.batch_size, self.batch_size)

        last: StageDir | None = None
        i = 0
        if not self.debug and any(s.stage.engines() for s in self.steps):
            from synth.backends import llm as llm_mod
            from synth.backends.workers import EnginePool, shared_pool

            self.pool = shared_pool()
            self._own_pool = self.pool is None
            if self.pool is None:
                self.pool = EnginePool(log_path=self.log_path)
            llm_mod.use_pool(self.pool)
        try:
            while i < len(self.steps):
                if self.steps[i].stage.is_global:
                    step = self.steps[i]
                    self._release(after=i)
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
            if self.pool is not None:
                from synth.backends import llm as llm_mod

                llm_mod.use_pool(None)
                if self._own_pool:
                    self.pool.close()
                self.pool = None
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
        with self._load_lock:
            # LLM stages look their engine up again each time: its worker may have been replaced
            if step.index in self._loaded and not step.stage.engines():
                return
            if step.index not in self._loaded:
                log.info("loading stage '%s' (%s)", step.spec.name, step.spec.type)
            try:
                step.stage.load()
            except AligncraftError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise StageError(step.spec.name, None, exc, traceback.format_exc()) from exc
            self._loaded.add(step.index)

    def _release(self, after: int, keep: set[tuple] | None = None) -> None:
        """End the engine workers that no stage from ``after`` on needs (plus ``keep``)."""
        if self.pool is None or not self._own_pool:
            return  # a shared pool keeps its engines warm for the next run
        needed = {k for s in self.steps[after:] for k, _ in s.stage.engines()} | (keep or set())
        self.pool.release(needed)

    def _phases(self, seg: list[Step]) -> list[list[Step]]:
        """Split a segment where the next engine does not fit beside the current ones."""
        phases: list[list[Step]] = [[]]
        shares: dict[tuple, float] = {}
        for step in seg:
            new = {k: v for k, v in step.stage.engines() if k not in shares}
            if new and shares and sum(shares.values()) + sum(new.values()) > 1.0 + 1e-9:
                phases.append([])
                shares = {}
            shares.update(dict(step.stage.engines()))
            phases[-1].append(step)
        return [p for p in phases if p]

    def _run_segment(self, seg: list[Step], shards: list[int], get_input: Callable[[int], pa.Table], total_rows: int | None) -> None:
        for s in seg:
            self._bar(s, total_rows)
        phases = self._phases(seg) if self.pool is not None else [seg]
        if len(phases) > 1:
            log.info("engines do not fit together (memory shares): running %d groups of stages one after another", len(phases))
        for k, phase in enumerate(phases):
            if k > 0:
                prev = phases[k - 1][-1].dir
                get_input = prev.read_kept  # type: ignore[assignment]
            if self.pool is not None and len(phases) > 1:
                self.pool.release({key for s in phase for key, _ in s.stage.engines()})
            self._run_phase(phase, shards, get_input)
            self._release(after=phase[-1].index + 1)
        for s in seg:
            self._finish(s)

    def _head_chain(self, head: list[Step], shard: int, get_input: Callable[[int], pa.Table]) -> tuple[pa.Table | None, StageDir | None]:
        """Run one shard through the head stages (LLM stages and those between them)."""
        table: pa.Table | None = None
        prev_dir: StageDir | None = None
        for step in head:
            if step.dir.shard_done(shard):
                table, prev_dir = None, step.dir
                continue
            if table is None:
                table = prev_dir.read_kept(shard) if prev_dir else get_input(shard)
            self._load(step)
            kept, rejected, stats = apply_stage(step.spec.name, step.stage, table, shard)
            step.dir.write_shard(shard, kept, rejected, stats)
            self._bar(step, None).update(stats["rows_in"])
            table, prev_dir = kept, step.dir
        return table, prev_dir

    def _run_phase(self, seg: list[Step], shards: list[int], get_input: Callable[[int], pa.Table]) -> None:
        last_llm = max((k for k, s in enumerate(seg) if s.stage.needs_llm), default=-1)
        tail_from = len(seg) if self.workers == 0 else last_llm + 1
        head, tail = seg[:tail_from], seg[tail_from:]
        todo = [sh for sh in shards if not all(s.dir.shard_done(sh) for s in seg)]
        if not todo:
            return
        pool = None
        threads = None
        heads: deque[tuple[int, Future]] = deque()
        tails: deque[tuple[int, Future]] = deque()
        parallel_heads = self.pool is not None and last_llm >= 0
        if tail and any(not s.dir.shard_done(sh) for s in tail for sh in todo):
            pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"))
        if parallel_heads:
            threads = ThreadPoolExecutor(max_workers=self.shards_in_flight, thread_name_prefix="shard")

        def start_tail(shard: int, table: pa.Table | None, prev_dir: StageDir | None) -> None:
            if not tail or all(s.dir.shard_done(shard) for s in tail):
                return
            if table is None and prev_dir is None:
                table = get_input(shard)
            specs = [s.spec for s in tail]
            dirs = [(str(s.dir.path), s.spec.name, s.dir.fp) for s in tail]
            inp = None if table is not None else (str(prev_dir.path), "", "")  # type: ignore[union-attr]
            tails.append((shard, pool.submit(_run_chain, specs, dirs, shard, table, inp)))  # type: ignore[union-attr]
            while len(tails) > 2 * max(1, self.workers):
                self._collect(tail, *tails.popleft())

        try:
            it = iter(todo)
            if threads is None:
                for shard in it:
                    start_tail(shard, *self._head_chain(head, shard, get_input))
            else:
                for shard in itertools.islice(it, self.shards_in_flight):
                    heads.append((shard, threads.submit(self._head_chain, head, shard, get_input)))
                while heads:
                    shard, fut = heads.popleft()
                    table, prev_dir = fut.result()
                    nxt = next(it, None)
                    if nxt is not None:
                        heads.append((nxt, threads.submit(self._head_chain, head, nxt, get_input)))
                    start_tail(shard, table, prev_dir)
            while tails:
                self._collect(tail, *tails.popleft())
        except BaseException:
            for _, f in list(heads) + list(tails):
                f.cancel()
            if self.pool is not None and heads:
                # threads blocked on an engine call: ending the engines fails their calls
                self.pool.close()
            raise
        finally:
            if threads is not None:
                threads.shutdown(wait=True, cancel_futures=True)
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

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
        step.dir.write_global(kept, rejected, stats, self.batch_size)
        bar.update(table.num_rows)
        self._finish(step)

    def _finish(self, step: Step) -> None:
        if self.on_stage_done:
            self.on_stage_done(step)
