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
from synth.backends.llm import BACKENDS, LLM, check_sampling, get_llm

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
        if self.llm is None:
            self.llm = get_llm(self.backend, self.model, **self.engine)

    def models(self) -> dict[str, str]:
        return {"model": str(self.model)}

    @property
    def engine_llm(self) -> LLM:
        if self.llm is None:
            self.load()
        assert self.llm is not None
        return self.llm
