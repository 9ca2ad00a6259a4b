"""Rendering chat templates the way transformers does, and cutting them at sentinels.

:mod:`synth.magpie.template` derives Magpie's pre-query strings by rendering a conversation
whose contents are sentinels and cutting the text right before one. This module is that
machinery: a jinja environment configured like transformers' (sandbox, ``trim_blocks``,
``lstrip_blocks``, loop controls, its ``tojson``, ``raise_exception``, ``strftime_now``), so a
raw template string renders exactly as ``apply_chat_template`` would, without loading a
tokenizer; and the cut helpers.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from pipelines.errors import ConfigError

__all__ = ["ASSISTANT", "SYSTEM", "USER", "USER2", "cut_before", "is_tokenizer", "render", "template_bos", "token_boundary"]

# Sentinels: plain ASCII, no whitespace (templates ``| trim`` content), never in a template.
USER = "ALIGNCRAFTxSENTINELxUSERx1"
USER2 = "ALIGNCRAFTxSENTINELxUSERx2"
ASSISTANT = "ALIGNCRAFTxSENTINELxASSISTANTx1"
SYSTEM = "ALIGNCRAFTxSENTINELxSYSTEMx1"


def _raise_exception(message: str) -> None:
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: Any = None, sort_keys: bool = False) -> str:
    # transformers' own tojson: keeps key order and non-ASCII text, unlike jinja's built-in.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


@lru_cache(maxsize=32)
def _compile(template: str) -> tuple[Any, frozenset[str]]:
    """Compile like transformers does (sandbox, trim_blocks, lstrip_blocks, loopcontrols)."""
    import jinja2
    from jinja2 import meta, nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Generation(Extension):
        # `{% generation %}` marks assistant tokens for training masks; here it only renders.
        tags = frozenset({"generation"})

        def parse(self, parser: Any) -> list[nodes.Node]:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        names = frozenset(meta.find_undeclared_variables(env.parse(template)))
        return env.from_string(template), names
    except jinja2.TemplateSyntaxError as e:
        msg = f"the chat template does not parse: {e}"
        raise ConfigError(msg) from e


def is_tokenizer(source: Any) -> bool:
    return not isinstance(source, str) and hasattr(source, "apply_chat_template")


def template_bos(source: Any, bos_token: str | None) -> str:
    if bos_token is not None:
        return bos_token
    if is_tokenizer(source):
        return getattr(source, "bos_token", None) or ""
    return ""


def render(source: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool,
            bos_token: str | None, eos_token: str | None, template_vars: Mapping[str, Any]) -> str:
    """Render ``messages`` with a tokenizer's chat template or a raw jinja template string."""
    from jinja2.exceptions import TemplateError

    kwargs = dict(template_vars)
    if is_tokenizer(source):
        if not getattr(source, "chat_template", None):
            msg = f"the tokenizer {type(source).__name__} has no chat_template; pass the template string instead"
            raise ConfigError(msg)
        for name, value in (("bos_token", bos_token), ("eos_token", eos_token)):
            if value is not None:
                kwargs[name] = value
        try:
            out = source.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs)
        except TemplateError as e:
            msg = f"the chat template refused the conversation: {e}"
            raise ConfigError(msg) from e
        return out if isinstance(out, str) else str(out)
    if not isinstance(source, str):
        msg = f"expected a tokenizer with a chat template or a jinja template string, got {type(source).__name__}"
        raise ConfigError(msg)
    compiled, names = _compile(source)
    for name, value in (("bos_token", bos_token), ("eos_token", eos_token)):
        if name in names and value is None and name not in kwargs:
            msg = f"the chat template uses {name}; pass {name}=... with a raw template string"
            raise ConfigError(msg)
    context = {"bos_token": bos_token or "", "eos_token": eos_token or "", "tools": None, "documents": None, **kwargs}
    try:
        return compiled.render(messages=messages, add_generation_prompt=add_generation_prompt, **context)
    except TemplateError as e:
        msg = f"the chat template refused the conversation: {e}"
        raise ConfigError(msg) from e


def cut_before(rendered: str, sentinel: str) -> str:
    if rendered.count(sentinel) != 1:
        msg = "the chat template did not render the user message exactly once; cannot derive a pre-query template"
        raise ConfigError(msg, hint=f"rendered: {rendered[:200]!r}")
    return rendered[: rendered.index(sentinel)]


def token_boundary(text: str, k: int) -> int:
    """Back ``k`` off to a token-safe boundary: never split ``<|end|>``/``<|user|>`` mid-way."""
    while k > 0 and not (text[k - 1] in "\n>]" or (k < len(text) and text[k] in "<[")):
        k -= 1
    return k

