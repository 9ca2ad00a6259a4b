"""Recipes: YAML files under ``pipelines/recipes/`` (or any path), with ``--set`` overrides.

A recipe::

    description: one line shown by `aligncraft recipes`
    seed: 0
    batch_size: 256          # rows per shard; LLM stages get a whole shard per engine call
    llm: {backend: vllm, model: default, max_model_len: 2048}   # defaults for LLM stages
    source: {type: generate, num_rows: 300}     # or {type: input, columns: {instruction: prompt}}
    stages:
      - {name: instructions, stage: magpie_instructions, temperature: 1.0}

``--set instructions.temperature=0.8``, ``--set source.num_rows=1000`` and
``--set llm.model=PATH`` address any value; values are parsed as YAML (numbers, lists, ...).
A glob names several stages at once: ``--set 'r*_judge.model=PATH'``.

Secrets never sit in a recipe: the recipe is written to ``run/config.yaml``, the manifest
and the dataset card (which ``--push-to-hub`` uploads), and ``--set`` lands in the card's
command line. A key comes from the environment (``OPENAI_API_KEY``, ``HF_TOKEN``) or from
a variable the recipe names (``api_key_env: MY_KEY``); a literal ``api_key:`` is refused.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ConfigError

RECIPES_DIR = Path(__file__).parent / "recipes"
TOP_KEYS = {"name", "description", "seed", "batch_size", "llm", "source", "stages", "card"}
# keys whose value is a credential; ``*_env`` keys name a variable instead and are fine
SECRET_KEYS = {"api_key", "apikey", "token", "hf_token", "access_token", "auth_token", "password", "secret", "secret_key", "openai_api_key", "authorization"}


def list_recipes() -> dict[str, str]:
    """Recipe name -> one-line description."""
    out = {}
    for f in sorted(RECIPES_DIR.glob("*.yaml")):
        try:
            out[f.stem] = (yaml.safe_load(f.read_text()) or {}).get("description", "")
        except yaml.YAMLError:
            out[f.stem] = "(unreadable recipe)"
    return out


def recipe_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    cand = RECIPES_DIR / f"{name_or_path}.yaml"
    if cand.is_file():
        return cand
    import difflib

    names = list(list_recipes())
    close = difflib.get_close_matches(name_or_path, names, n=1)
    raise ConfigError(f"unknown recipe '{name_or_path}'", hint=(f"did you mean '{close[0]}'? " if close else "") + f"`aligncraft recipes` lists them: {', '.join(names)}")


def load_recipe(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    path = recipe_path(name_or_path)
    try:
        recipe = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {path} is not valid YAML: {exc}") from None
    recipe.setdefault("name", path.stem)
    recipe = apply_overrides(_unshare(recipe), overrides)
    return validate_recipe(recipe)


def _unshare(value: Any) -> Any:
    """A copy in which no two places share an object. YAML anchors (``&answer`` ... ``*answer``)
    load as one dict, and ``copy.deepcopy`` keeps that sharing, so ``--set
    r1_strong.sampling.max_tokens=8`` would change every stage that names the anchor."""
    if isinstance(value, dict):
        return {k: _unshare(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshare(v) for v in value]
    return value


def apply_overrides(recipe: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    recipe = copy.deepcopy(recipe)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got '{item}'", hint="e.g. --set generate.temperature=0.7")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        parts = key.split(".")
        if len(parts) == 1:
            if parts[0] not in TOP_KEYS:
                raise ConfigError(f"--set {item}: unknown top-level key '{parts[0]}'", hint=f"use one of {sorted(TOP_KEYS)} or <stage name>.<param>")
            recipe[parts[0]] = value
            continue
        for target in _resolve_targets(recipe, parts[0], item):
            for p in parts[1:-1]:
                nxt = target.get(p)
                if nxt is None:
                    nxt = target[p] = {}
                if not isinstance(nxt, dict):
                    raise ConfigError(f"--set {item}: '{p}' is not a section")
                target = nxt
            target[parts[-1]] = copy.deepcopy(value)
    return recipe


def _resolve_targets(recipe: dict[str, Any], head: str, item: str) -> list[dict[str, Any]]:
    """The sections ``head`` names; a glob (``r*_judge``) names every stage it matches, so
    one ``--set`` reaches each round of a loop written as repeated stages."""
    if not any(c in head for c in "*?["):
        return [_resolve_target(recipe, head, item)]
    import fnmatch

    hits = [st for st in recipe.get("stages", []) if fnmatch.fnmatchcase(str(st.get("name")), head)]
    if not hits:
        names = [s.get("name") for s in recipe.get("stages", [])]
        raise ConfigError(f"--set {item}: no stage name matches '{head}'", hint=f"stages in this recipe: {', '.join(map(str, names))}")
    return hits


def _resolve_target(recipe: dict[str, Any], head: str, item: str) -> dict[str, Any]:
    if head in ("llm", "source", "card"):
        return recipe.setdefault(head, {})
    for st in recipe.get("stages", []):
        if st.get("name") == head:
            return st
    if head in TOP_KEYS:
        return recipe
    names = [s.get("name") for s in recipe.get("stages", [])]
    raise ConfigError(f"--set {item}: no stage named '{head}'", hint=f"stages in this recipe: {', '.join(map(str, names))}; or llm./source.")


def refuse_secrets(value: Any, where: str = "") -> None:
    """Raise ``ConfigError`` for a literal credential anywhere in a recipe (the message names
    the key, never the value).

    >>> refuse_secrets({"llm": {"engine": {"api_key_env": "MY_KEY"}}})
    >>> refuse_secrets({"llm": {"engine": {"api_key": "sk-123"}}})
    Traceback (most recent call last):
    ...
    pipelines.errors.ConfigError: llm.engine.api_key: a literal secret in a recipe is refused (it would be written to run/config.yaml, the manifest and the dataset card)
    """
    if isinstance(value, dict):
        for k, v in value.items():
            key = f"{where}.{k}" if where else str(k)
            if str(k).lower() in SECRET_KEYS and v not in (None, ""):
                msg = f"{key}: a literal secret in a recipe is refused (it would be written to run/config.yaml, the manifest and the dataset card)"
                env = "HF_TOKEN" if "token" in str(k).lower() else "OPENAI_API_KEY"
                raise ConfigError(msg, hint=f"put it in the environment ({env}), or name a variable that holds it: {key}_env: MY_KEY" if not key.endswith("token") else f"put it in the environment ({env})")
            refuse_secrets(v, key)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            refuse_secrets(v, f"{where}[{i}]")


def validate_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    refuse_secrets(recipe)
    unknown = set(recipe) - TOP_KEYS
    if unknown:
        raise ConfigError(f"recipe '{recipe.get('name')}': unknown key(s) {sorted(unknown)}", hint=f"allowed: {sorted(TOP_KEYS)}")
    stages = recipe.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"recipe '{recipe.get('name')}' has no stages")
    seen = set()
    for i, st in enumerate(stages):
        if not isinstance(st, dict) or "stage" not in st:
            raise ConfigError(f"recipe '{recipe.get('name')}': stage #{i + 1} needs a 'stage:' type")
        st.setdefault("name", st["stage"])
        if st["name"] in seen:
            raise ConfigError(f"recipe '{recipe.get('name')}': two stages named '{st['name']}'", hint="give each a unique name:")
        seen.add(st["name"])
    recipe.setdefault("seed", 0)
    recipe.setdefault("batch_size", 256)
    if not isinstance(recipe["batch_size"], int) or recipe["batch_size"] < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {recipe['batch_size']!r}")
    recipe.setdefault("source", {"type": "input"})
    recipe.setdefault("llm", {})
    return recipe
