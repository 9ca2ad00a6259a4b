"""Checking the kwargs an IFBench instruction comes with.

The reference's ``build_description`` draws a *random* value for a missing (or, for
counts, negative) kwarg, because it also generates prompts. A verifier must not guess:
here those cases raise ``ConfigError`` naming the kwarg, and every value the reference
takes as given is accepted unchanged.
"""
from __future__ import annotations

from pipelines.errors import ConfigError

__all__ = ["integer", "nonempty"]


def integer(value: object, name: str, *, minimum: int = 0) -> int:
    """An integer kwarg ``>= minimum`` (``bool`` is refused).

    >>> integer(3, "N")
    3
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"kwarg '{name}' must be an integer >= {minimum}, got {value!r}"
        raise ConfigError(msg)
    return value


def nonempty(value: object, name: str) -> str:
    """A string kwarg with something other than whitespace in it.

    >>> nonempty("cat", "keyword")
    'cat'
    """
    if not isinstance(value, str) or not value.strip():
        msg = f"kwarg '{name}' must be a non-empty string, got {value!r}"
        raise ConfigError(msg)
    return value
