"""Engine workers: one process per (backend, model, engine options), owning the engine.

Why processes: vLLM cannot tear an in-process engine down without breaking every other live
engine's distributed state, so a recipe with several models (UltraFeedback's pool, CodecLM's
strong/target/judge, CHES's policy model) could never free one. A worker is a spawned
process; ending it is the clean teardown, and its memory comes back.

Stages do not see any of this: while an :class:`EnginePool` is active (the executor opens one
for a run), :func:`synth.backends.llm.get_llm` hands out an :class:`EngineClient`, which has
the backend's interface (``generate``, ``chat``, ``tokenizer``, ``call``). Calls from several
threads (the executor's shards in flight) go to the worker at once; the vLLM worker feeds all
of their requests into one continuous batch (:class:`synth.backends.vllm.Feeder`), so shard
k+1's instructions are generated while shard k's responses are.

Messages are plain tuples of lists (token texts, sampling dicts, seeds) and the backends'
``Output`` dataclasses back, never table rows. A worker that dies (SIGKILL, OOM) is started
again once and its calls in flight are sent again; a second death fails those calls with one
line naming the model and the exit code.

``data_parallel: N`` in the engine options starts N workers of the same model (one device
each when GPUs are visible) and spreads each call's prompts over them.
"""
from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from pipelines.errors import BackendError

log = logging.getLogger(__name__)

WORKER_BACKENDS = ("vllm", "transformers")
START_TIMEOUT_S = 900.0
HEARTBEAT_S = 60.0


# -- the worker process -----------------------------------------------------------------------
def _redirect_output(log_path: str | None) -> None:
    """vLLM and transformers print warnings and progress: send them to the run's log file."""
    if not log_path:
        return
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s[worker]: %(message)s", force=True)


def _exit_now(replies: Any) -> None:
    """End the worker without vLLM's teardown (7-14 s of garbage collection and native
    cleanup, measured on CPU): it holds nothing that needs a clean exit, and the OS frees its
    memory and accelerator at once. Replies already queued are flushed first."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    replies.close()
    replies.join_thread()
    os._exit(0)


def _worker_main(backend: str, model: str | None, options: dict[str, Any], device: str | None, requests: Any, replies: Any, log_path: str | None) -> None:
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device
    _redirect_output(log_path)
    try:
        from synth.backends.llm import load_backend

        llm = load_backend(backend, model, **options)
    except BaseException as exc:  # noqa: BLE001 - report, then exit
        replies.put(("failed", _describe(exc), traceback.format_exc()))
        return
    replies.put(("ready", llm.tokenizer, getattr(llm, "name", str(model))))
    feeder = getattr(llm, "feeder", None)
    pending: dict[int, Any] = {}  # call id -> vllm Call, for the continuous feed
    while True:
        try:
            msg = requests.get(block=not (feeder is not None and feeder.busy), timeout=None)
        except queue.Empty:
            msg = None
        while msg is not None:
            if msg[0] == "stop":
                _exit_now(replies)
            _handle(llm, feeder, pending, msg, replies)
            try:
                msg = requests.get_nowait()
            except queue.Empty:
                msg = None
        if feeder is not None and feeder.busy:
            try:
                feeder.step()
            except Exception as exc:  # noqa: BLE001 - the feeder aborted everything; tell the callers
                for cid in list(pending):
                    replies.put(("error", cid, _describe(exc), traceback.format_exc()))
                pending.clear()
                continue
            for cid in [c for c, call in pending.items() if call.done]:
                call = pending.pop(cid)
                if call.error is not None:
                    replies.put(("error", cid, _describe(call.error), ""))
                else:
                    replies.put(("ok", cid, call.outputs))


def _handle(llm: Any, feeder: Any, pending: dict[int, Any], msg: tuple, replies: Any) -> None:
    kind, cid, args, kwargs = msg
    try:
        if kind in ("generate", "chat") and feeder is not None:
            prompts = args[0] if kind == "generate" else llm.render_chats(args[0], kwargs.get("continue_final_message", False))
            pending[cid] = llm.submit(prompts, args[1], seeds=kwargs.get("seeds"))
            return
        if kind == "generate":
            result = llm.generate(*args, **kwargs)
        elif kind == "chat":
            result = llm.chat(*args, **kwargs)
        elif kind == "call":
            fn, *rest = args
            result = fn(llm, *rest, **kwargs)
        else:
            raise ValueError(f"unknown request {kind!r}")
        replies.put(("ok", cid, result))
    except Exception as exc:  # noqa: BLE001 - goes back to the caller, who raises it
        replies.put(("error", cid, _describe(exc), traceback.format_exc()))


def _describe(exc: BaseException) -> str:
    fmt = getattr(exc, "format_message", None)
    return fmt() if callable(fmt) else f"{type(exc).__name__}: {exc}"


# -- the client side --------------------------------------------------------------------------
class EngineDied(BackendError):
    """An engine worker died twice (or failed to start)."""


class _Worker:
    """One process and the futures of the calls it has in flight."""

    def __init__(self, backend: str, model: str | None, options: dict[str, Any], device: str | None, log_path: str | None, label: str) -> None:
        self.backend, self.model, self.options, self.device, self.log_path, self.label = backend, model, options, device, log_path, label
        self.ctx = mp.get_context("spawn")
        self.lock = threading.Lock()
        self.inflight: dict[int, tuple[tuple, Future]] = {}
        self.restarts_left = 1
        self.closed = False
        self.tokenizer: Any = None
        self.name = str(model)
        self._start()
        self.reader = threading.Thread(target=self._read, name=f"engine-{label}", daemon=True)
        self.reader.start()

    def _start(self) -> None:
        self.requests = self.ctx.Queue()
        self.replies = self.ctx.Queue()
        self.proc = self.ctx.Process(target=_worker_main, args=(self.backend, self.model, self.options, self.device, self.requests, self.replies, self.log_path), name=f"aligncraft-engine-{self.label}", daemon=True)
        self.proc.start()
        t0 = time.monotonic()
        while True:
            try:
                msg = self.replies.get(timeout=1.0)
            except queue.Empty:
                if not self.proc.is_alive():
                    raise EngineDied(f"engine worker for '{self.label}' exited with code {self.proc.exitcode} while loading", hint=f"see the run's log.txt{'' if not self.log_path else ' (' + self.log_path + ')'}")
                if time.monotonic() - t0 > START_TIMEOUT_S:
                    self.proc.kill()
                    raise EngineDied(f"engine worker for '{self.label}' did not load within {START_TIMEOUT_S:.0f} s")
                continue
            if msg[0] == "failed":
                self.proc.join(timeout=10)
                raise BackendError(f"engine for '{self.label}' failed to load: {msg[1]}")
            _, self.tokenizer, self.name = msg
            log.info("engine worker '%s' ready (pid %d)", self.label, self.proc.pid)
            return

    def submit(self, msg: tuple) -> Future:
        fut: Future = Future()
        with self.lock:
            if self.closed:
                raise EngineDied(f"engine worker for '{self.label}' is closed")
            self.inflight[msg[1]] = (msg, fut)
            self.requests.put(msg)
        return fut

    def _read(self) -> None:
        last = time.monotonic()
        while not self.closed:
            try:
                msg = self.replies.get(timeout=1.0)
            except (queue.Empty, EOFError, OSError):
                msg = None
            if msg is None:
                if not self.closed and not self.proc.is_alive():
                    self._died()
                elif self.inflight and time.monotonic() - last > HEARTBEAT_S:
                    log.info("engine '%s': %d calls in flight, none finished for %.0f s", self.label, len(self.inflight), time.monotonic() - last)
                    last = time.monotonic()
                continue
            last = time.monotonic()
            kind, cid = msg[0], msg[1]
            with self.lock:
                item = self.inflight.pop(cid, None)
            if item is None:
                continue
            if kind == "ok":
                item[1].set_result(msg[2])
            else:
                item[1].set_exception(BackendError(f"engine '{self.label}': {msg[2]}", hint=None))

    def _died(self) -> None:
        code = self.proc.exitcode
        cause = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        with self.lock:
            calls = list(self.inflight.values())
            can_restart = self.restarts_left > 0
            self.restarts_left -= 1
        if can_restart:
            log.warning("engine worker '%s' died (%s); starting it again and re-sending %d calls", self.label, cause, len(calls))
            try:
                self._start()
                with self.lock:
                    for msg, _ in calls:
                        self.requests.put(msg)
                return
            except BackendError as exc:
                cause = f"{cause}, and the restart failed: {exc.message}"
        err = EngineDied(f"engine worker for '{self.label}' died twice ({cause})", hint="out of memory? lower max_num_seqs / max_model_len, or see the run's log.txt")
        with self.lock:
            self.closed = True
            items = list(self.inflight.values())
            self.inflight.clear()
        for _, fut in items:
            fut.set_exception(err)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            items = list(self.inflight.values())
            self.inflight.clear()
        for _, fut in items:
            if not fut.done():
                fut.set_exception(EngineDied(f"engine worker for '{self.label}' was closed"))
        try:
            self.requests.put(("stop", None, None, None))
        except (OSError, ValueError):
            pass
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=10)


class EngineClient:
    """The LLM interface, served by one or more worker processes (``data_parallel``)."""

    _ids = itertools.count()

    def __init__(self, backend: str, model: str | None, options: dict[str, Any], *, log_path: str | None = None) -> None:
        options = dict(options)
        n = int(options.pop("data_parallel", 1) or 1)  # memory_share stays: load_backend maps it to the engine
        self.backend, self.model, self.options = backend, model, options
        label = f"{backend}:{model}"
        gpus = _visible_gpus()
        self.workers: list[_Worker] = []
        try:
            for i in range(n):
                dev = gpus[i % len(gpus)] if gpus and n > 1 else None
                self.workers.append(_Worker(backend, model, options, dev, log_path, label if n == 1 else f"{label}#{i}"))
        except BaseException:
            self.close()
            raise
        self.name = self.workers[0].name
        self._rr = itertools.count()

    @property
    def tokenizer(self) -> Any:
        return self.workers[0].tokenizer

    def generate(self, prompts: Sequence[str], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None) -> list[Any]:
        return self._spread("generate", list(prompts), sampling, seeds, {})

    def chat(self, chats: Sequence[Any], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None, continue_final_message: bool = False) -> list[Any]:
        return self._spread("chat", [list(c) for c in chats], sampling, seeds, {"continue_final_message": continue_final_message})

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        w = self.workers[next(self._rr) % len(self.workers)]
        return w.submit(("call", next(self._ids), (fn, *args), kwargs)).result()

    def _spread(self, kind: str, items: list[Any], sampling: dict[str, Any], seeds: Sequence[int] | None, extra: dict[str, Any]) -> list[Any]:
        if not items:
            return []
        n = len(self.workers)
        parts = n if len(items) >= 2 * n else 1
        size = -(-len(items) // parts)
        futures = []
        start = next(self._rr)
        for k in range(parts):
            lo, hi = k * size, min(len(items), (k + 1) * size)
            if lo >= hi:
                continue
            kw = dict(extra, seeds=list(seeds[lo:hi]) if seeds is not None else None)
            w = self.workers[(start + k) % n]
            futures.append(w.submit((kind, next(self._ids), (items[lo:hi], sampling), kw)))
        out: list[Any] = []
        for f in futures:
            out.extend(f.result())
        return out

    def close(self) -> None:
        for w in self.workers:
            w.close()


def _visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d for d in env.split(",") if d.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


class EnginePool:
    """The engines of one run, keyed like :func:`synth.backends.llm.get_llm`'s cache.

    ``max_engines`` bounds how many workers stay alive: starting one more ends the least
    recently used idle worker (a shared pool keeps engines warm between runs).
    """

    def __init__(self, *, log_path: str | None = None, max_engines: int | None = None) -> None:
        self.log_path = log_path
        self.max_engines = max_engines
        self.clients: dict[tuple, EngineClient] = {}
        self.lock = threading.Lock()

    def get(self, key: tuple, backend: str, model: str | None, options: dict[str, Any]) -> EngineClient:
        with self.lock:
            client = self.clients.pop(key, None)
            if client is not None and any(w.closed for w in client.workers):
                client.close()
                client = None
            if client is None:
                self._make_room()
                log.info("starting engine worker for %s:%s", backend, model)
                client = EngineClient(backend, model, options, log_path=self.log_path)
            self.clients[key] = client  # most recently used last
            return client

    def _make_room(self) -> None:
        if self.max_engines is None:
            return
        for key in list(self.clients):
            if len(self.clients) < self.max_engines:
                return
            if not any(w.inflight for w in self.clients[key].workers):
                log.info("stopping engine worker for %s:%s (least recently used)", key[0], key[1])
                self.clients.pop(key).close()

    def release(self, keep: set[tuple]) -> None:
        """End the workers no later stage needs (their memory comes back)."""
        with self.lock:
            for key in [k for k in self.clients if k not in keep]:
                log.info("stopping engine worker for %s:%s", key[0], key[1])
                self.clients.pop(key).close()

    def close(self) -> None:
        self.release(set())


_SHARED: EnginePool | None = None


def shared_pool() -> EnginePool | None:
    """With ``ALIGNCRAFT_KEEP_ENGINES=1`` (notebooks, test sessions), one pool serves every run in
    this process, so engines stay warm between runs (at most 3 alive); ``None`` otherwise."""
    global _SHARED
    if os.environ.get("ALIGNCRAFT_KEEP_ENGINES", "") not in ("1", "true", "yes"):
        return None
    if _SHARED is None:
        import atexit

        _SHARED = EnginePool(max_engines=3)
        atexit.register(_SHARED.close)
    return _SHARED
