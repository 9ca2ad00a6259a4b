"""Compose stages from a recipe and validate the whole pipeline before any model loads."""
from __future__ import annotations

import ast
import hashlib
import inspect
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.errors import ConfigError, SchemaError
from pipelines.registry import stage_class
from pipelines.stage import Stage

LLM_KEYS = ("backend", "model", "engine")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("pipelines", "synth", "filters")


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
            d.update(d.pop("engine", None) or {})  # llm.engine.<option> and llm.<option> both work
            if "backend" in params and params["backend"] != backend:
                # a stage on another backend (an OpenAI-compatible strong model beside a local
                # vLLM recipe): the recipe's engine options are the other backend's, and its
                # model name the other backend's too
                d, model = {}, None
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


def validate(stages: list[tuple[StageSpec, Stage]], schema: pa.Schema, *, source: Any = None) -> list[pa.Schema]:
    """Check every stage's required columns and types, and run each stage's ``check()``
    (model paths and the like); return the schema after each stage.

    With ``source`` (a :class:`pipelines.source.Source`), a column that comes straight from
    the input is also checked against the data: a wrong type names the file and the first
    row holding such a value, and a null in a text column that a stage other than a filter
    reads names the first null row (a null instruction would otherwise reach the model as
    the prompt "None"; a filter earlier in the pipeline, such as ``empty_filter``, decides
    about those rows itself, with a reason).
    """
    from pipelines.stage import Filter

    schemas = []
    from_source = set(schema.names)
    filtered: set[str] = set()  # source columns a filter has seen (and may have rejected nulls of)
    for spec, stage in stages:
        for col, typ in stage.requires.items():
            idx = schema.get_field_index(col)
            if idx < 0:
                raise SchemaError(f"requires column '{col}', which is not there (available: {', '.join(schema.names)})", stage=spec.name, column=col, hint="map an input column to it with --set source.columns.%s=<name>, or add a stage that makes it" % col)
            have = schema.field(col).type
            if typ is not None and not same_type(have, typ) and not pa.types.is_null(have):
                where = source.describe_value(col) if source is not None and col in from_source else ""
                raise SchemaError(f"column '{col}' has type {have}, expected {typ}{where}", stage=spec.name, column=col)
            text = pa.types.is_string(have) or pa.types.is_large_string(have)
            if source is not None and col in from_source and text and col not in filtered and not isinstance(stage, Filter):
                source.check_no_nulls(col, stage=spec.name)
        if isinstance(stage, Filter):
            filtered.update(stage.requires)
        try:
            stage.check()
        except ConfigError as exc:
            raise ConfigError(f"stage '{spec.name}' ({spec.type}): {exc.message}", hint=exc.hint) from None
        from_source -= set(stage.adds)
        schema = stage.output_schema(schema)
        schemas.append(schema)
    return schemas


def module_file(name: str, root: Path = PROJECT_ROOT) -> Path | None:
    """The source file of project module ``name`` under ``root``, or None outside the project."""
    if name.split(".")[0] not in PROJECT_PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Module names an AST imports, anywhere in it (lazy imports inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base = parts if is_package else parts[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{a.name}" for a in node.names)  # `from pkg import module`
    return names


_IMPORTS: dict[tuple[str, bytes], set[str]] = {}


def code_hash(module: str, root: Path = PROJECT_ROOT) -> str:
    """sha256 over the source of ``module`` and of every project module it imports,
    transitively (``pipelines``, ``synth``, ``filters``; packages' ``__init__`` files too).

    This is what a stage's fingerprint covers instead of trusting a hand-bumped ``version``:
    an edited parser or template module recomputes the stages that import it, and only them.
    Third-party code is not hashed (its versions go to the card).
    """
    seen: dict[str, bytes] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name, root)
        if path is None:
            continue
        digest = hashlib.sha256(path.read_bytes()).digest()
        seen[name] = digest
        parts = name.split(".")
        todo.extend(".".join(parts[:k]) for k in range(1, len(parts)))  # parent packages run first
        key = (name, digest)
        if key not in _IMPORTS:  # parsing is the slow part: once per file content
            try:
                _IMPORTS[key] = _imported(ast.parse(path.read_bytes()), name, path.name == "__init__.py")
            except SyntaxError:
                _IMPORTS[key] = set()
        todo.extend(_IMPORTS[key])
    h = hashlib.sha256()
    for name in sorted(seen):
        h.update(name.encode() + b"\0" + seen[name])
    return h.hexdigest()[:16]


def stage_code_hash(stage: Stage | type) -> str:
    """:func:`code_hash` of the module defining a stage's class (a user's own module outside
    the project hashes just that file)."""
    cls = stage if isinstance(stage, type) else type(stage)
    if module_file(cls.__module__) is not None:
        return code_hash(cls.__module__)
    try:
        src = inspect.getsource(sys.modules[cls.__module__])
    except (OSError, TypeError, KeyError):
        return "unknown"
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def fingerprint(spec: StageSpec, version: str, upstream: str, batch_size: int, code: str = "") -> str:
    """A stage's identity in the run store: type, ``version``, ``code`` (:func:`stage_code_hash`),
    parameters, batch size and the upstream fingerprint, so a change anywhere upstream or in
    the stage's own code recomputes it and everything after it."""
    blob = json.dumps({"type": spec.type, "version": version, "code": code, "params": spec.params, "up": upstream, "bs": batch_size}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
