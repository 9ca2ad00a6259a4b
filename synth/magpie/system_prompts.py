"""Magpie's system prompts, verbatim from ``magpie-align/magpie``.

They steer which queries a model writes: ``pre_query_template_with_system_prompt``
(:data:`CHAT_SYSTEM_PROMPT`), ``--control_tasks`` (:data:`CONTROL_SYSTEM_PROMPTS`) and the
multi-turn sampler ``exp/gen_mt.py`` (:data:`MT_SYSTEM_PROMPT`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pipelines.errors import ConfigError

__all__ = ["CHAT_SYSTEM_PROMPT", "CONTROL_SYSTEM_PROMPTS", "MT_SYSTEM_PROMPT", "control_system_prompt"]

# Magpie's `pre_query_template_with_system_prompt` system turn (Llama-3.x entries).
CHAT_SYSTEM_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

# Magpie's `--control_tasks` system turns (`pre_query_template_{math,code,translation}` of the
# Llama-3/3.1 entries), kept verbatim: they steer which queries the model writes.
CONTROL_SYSTEM_PROMPTS: Mapping[str, str] = {
    "math": (
        "You are an AI assistant designed to provide helpful, step-by-step guidance on solving "
        "math problems. The user will ask you a wide range of complex mathematical questions.\n"
        "Your purpose is to assist users in understanding mathematical concepts, working through "
        "equations, and arriving at the correct solutions."
    ),
    "code": (
        "You are an AI assistant designed to provide helpful, step-by-step guidance on coding "
        "problems. The user will ask you a wide range of coding questions.\n"
        "Your purpose is to assist users in understanding coding concepts, working through code, "
        "and arriving at the correct solutions."
    ),
    "translation": (
        "You are an AI assistant specifically designed to provide accurate and contextually "
        "appropriate translations. Users will ask you to translate text between various "
        "languages.\nYour purpose is to assist users in understanding and conveying meaning "
        "across languages, maintaining the original context and nuances."
    ),
}

# `exp/gen_mt.py`'s system prompt for sampling follow-up user turns. Verbatim, typos included
# ("Al assistant", "thorough,relevant"): the released Magpie MT sets were made with this text.
MT_SYSTEM_PROMPT = (
    "You are a helpful Al assistant. The user will engage in a multi-round conversation with "
    "you, asking initial questions and following up with additional related questions. Your goal "
    "is to provide thorough,relevant and insightful responses to help the user with their queries."
)


def control_system_prompt(task: Literal["math", "code", "translation"]) -> str:
    """Magpie's domain system prompt for ``task`` (math, code or translation).

    >>> control_system_prompt("math").startswith("You are an AI assistant designed")
    True
    """
    try:
        return CONTROL_SYSTEM_PROMPTS[task]
    except KeyError:
        msg = f"unknown control task {task!r}; use one of {sorted(CONTROL_SYSTEM_PROMPTS)}"
        raise ConfigError(msg) from None
