"""The base for stages that call an LLM: model/backend/engine parameters and lazy loading.

Recipes give ``model`` (``default``, a local folder or a hub id), ``backend``
(``vllm`` | ``transformers`` | ``openai``) and ``engine`` (options for that backend:
``max_model_len``, ``base_url``, ``dtype``...); a recipe's top-level ``llm:`` section fills
them for every LLM stage. Sampling starts from the stage's defaults (the paper's values);
recipe keys override them one by one.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pipelines.errors import ConfigError
from pipelines.stage import Stage
from synth.backends.llm import BACKENDS, LLM, check_sampling, default_backend, engine_key, get_llm, memory_share

DEFAULT_ENGINE = {"max_model_len": 2048}


class LLMStage(Stage):
    needs_llm: ClassVar[bool] = True
    default_sampling: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, model: str = "default", backend: str | None = None, engine: dict[str, Any] | None = None, sampling: dict[str, Any] | None = None) -> None:
        if backend is not None and backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if engine is not None and not isinstance(engine, dict):
            raise ConfigError(f"engine must be a mapping of backend options, got {engine!r}")
        self.model = model
        self.backend = backend
        self.engine = {**DEFAULT_ENGINE, **(engine or {})} if (backend or "vllm") != "openai" else dict(engine or {})
        self.sampling = check_sampling({**self.default_sampling, **(sampling or {})}, where=f"{type(self).__name__}.sampling")
        self.params = {"model": model, "backend": backend, "engine": engine or {}, "sampling": self.sampling}
        self.llm: LLM | None = None

    def load(self) -> None:
        # looked up on every load: the executor may have ended this engine's worker and started another
        self.llm = get_llm(self.backend, self.model, **self.engine)

    def engines(self) -> list[tuple[tuple, float]]:
        if (self.backend or default_backend()) == "openai":
            return []  # a remote server: nothing resident here
        return [(engine_key(self.backend, self.model, self.engine), memory_share(self.backend, self.engine))]

    def check(self) -> None:
        """Resolve ``model`` at validation, without loading it, so a missing folder or an
        unknown name fails before earlier stages run for minutes. ``default`` is prepared
        (converted once); a folder must hold ``config.json``; any other name must be a hub
        id (``org/name``, or a bare name already in the local HF cache), and in the local
        cache when ``HF_HUB_OFFLINE`` is set. The openai backend serves whatever name the
        server knows: only its ``api_key_env`` variable is checked."""
        import os
        from pathlib import Path

        from synth.backends.llm import default_backend
        from synth.backends.models import resolve_model

        if (self.backend or default_backend()) == "openai":
            var = self.engine.get("api_key_env")
            if var and not os.environ.get(var):
                raise ConfigError(f"engine.api_key_env names ${var}, which is not set", hint=f"export {var}=... before the run")
            return
        name = resolve_model(self.model)
        if Path(name).exists():
            return
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
        except ValueError as exc:  # HFValidationError: not a well-formed repo id
            raise ConfigError(f"model '{name}' is neither a local folder nor a valid hub id: {exc}") from None
        if "/" not in name and not cached:
            msg = f"unknown model '{name}': not 'default', not a local folder, not a hub id"
            raise ConfigError(msg, hint="use model: default, a folder with config.json, or a hub id such as HuggingFaceTB/SmolLM2-135M-Instruct")
        if not cached and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            msg = f"model '{name}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
            raise ConfigError(msg, hint=f"download it first (huggingface-cli download {name}) or point model: at a local folder")

    def models(self) -> dict[str, str]:
        return {"model": str(self.model)}

    @property
    def engine_llm(self) -> LLM:
        if self.llm is None:
            self.load()
        assert self.llm is not None
        return self.llm
