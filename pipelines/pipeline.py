"""Compose stages from a recipe and validate the whole pipeline before any model loads."""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pipelines.errors import ConfigError, SchemaError
from pipelines.registry import stage_class
from pipelines.stage import Stage

LLM_KEYS = ("backend", "model", "engine")


@dataclass
class StageSpec:
    """A stage as the recipe names it: what the run store fingerprints and workers rebuild."""

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Stage:
        cls = stage_class(self.type)
        try:
            return cls(**self.params)
        except ConfigError as exc:
            raise ConfigError(f"stage '{self.name}' ({self.type}): {exc.message}", hint=exc.hint) from None
        except TypeError as exc:
            sig = inspect.signature(cls.__init__)
            allowed = [p for p in sig.parameters if p not in ("self", "kwargs")]
            raise ConfigError(f"stage '{self.name}' ({self.type}): {exc}", hint=f"parameters: {', '.join(allowed)}") from None


def specs_from_recipe(recipe: dict[str, Any]) -> list[StageSpec]:
    llm_defaults = dict(recipe.get("llm") or {})
    specs = []
    for st in recipe["stages"]:
        params = {k: v for k, v in st.items() if k not in ("name", "stage")}
        cls = stage_class(st["stage"])
        if getattr(cls, "needs_llm", False):
            d = dict(llm_defaults)
            backend, model = d.pop("backend", None), d.pop("model", None)
            if "backend" not in params and backend is not None:
                params["backend"] = backend
            if "model" not in params and model is not None:
                params["model"] = model
            if d:
                params["engine"] = {**d, **(params.get("engine") or {})}
        specs.append(StageSpec(st["name"], st["stage"], params))
    return specs


def same_type(a: pa.DataType, b: pa.DataType) -> bool:
    """Equal up to large/small string and list variants."""
    def norm(t: pa.DataType) -> str:
        return str(t).replace("large_string", "string").replace("large_list", "list").replace("string_view", "string")

    return norm(a) == norm(b)


def validate(stages: list[tuple[StageSpec, Stage]], schema: pa.Schema) -> list[pa.Schema]:
    """Check every stage's required columns and types; return the schema after each stage."""
    schemas = []
    for spec, stage in stages:
        for col, typ in stage.requires.items():
            idx = schema.get_field_index(col)
            if idx < 0:
                raise SchemaError(f"requires column '{col}', which is not there (available: {', '.join(schema.names)})", stage=spec.name, column=col, hint="map an input column to it with --set source.columns.%s=<name>, or add a stage that makes it" % col)
            have = schema.field(col).type
            if typ is not None and not same_type(have, typ) and not pa.types.is_null(have):
                raise SchemaError(f"column '{col}' has type {have}, expected {typ}", stage=spec.name, column=col)
        schema = stage.output_schema(schema)
        schemas.append(schema)
    return schemas


def fingerprint(spec: StageSpec, version: str, upstream: str, batch_size: int) -> str:
    blob = json.dumps({"type": spec.type, "version": version, "params": spec.params, "up": upstream, "bs": batch_size}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
