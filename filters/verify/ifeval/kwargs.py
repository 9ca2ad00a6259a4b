"""Checking the kwargs an IFEval instruction comes with.

The reference fills a missing or out-of-range kwarg with a *random* value (its
``build_description`` also generates prompts). A verifier must not guess, so here the
same cases raise ``ConfigError`` naming the kwarg; every value the reference accepts as
given is accepted unchanged.
"""
from __future__ import annotations

import functools
import re

from pipelines.errors import ConfigError

__all__ = ["AT_LEAST", "LESS_THAN", "compare", "count", "keyword_regex", "need", "string"]

LESS_THAN = "less than"
AT_LEAST = "at least"


def need(value: object, name: str) -> None:
    """Raise for a kwarg the reference would have drawn at random (empty or missing)."""
    if not value:
        msg = f"kwarg '{name}' is required and must be non-empty, got {value!r}"
        raise ConfigError(msg)


def count(value: object, name: str, *, minimum: int | None = 0) -> int:
    """An integer threshold ``>= minimum`` (the reference re-draws negative ones; for
    ``capital_frequency`` it does not, hence ``minimum=None``)."""
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        msg = f"kwarg '{name}' must be an integer{bound}, got {value!r}"
        raise ConfigError(msg)
    return value


def string(value: object, name: str) -> str:
    """A string kwarg; the reference keeps an empty one as given."""
    if not isinstance(value, str):
        msg = f"kwarg '{name}' must be a string, got {value!r}"
        raise ConfigError(msg)
    return value


def compare(actual: int, threshold: int, relation: str, name: str = "relation") -> bool:
    """``actual < threshold`` for "less than", ``actual >= threshold`` for "at least"."""
    if relation == LESS_THAN:
        return actual < threshold
    if relation == AT_LEAST:
        return actual >= threshold
    msg = f"kwarg '{name}' must be '{LESS_THAN}' or '{AT_LEAST}', got {relation!r}"
    raise ConfigError(msg)


@functools.lru_cache(maxsize=1024)
def keyword_regex(pattern: str, *, flags: int = 0) -> re.Pattern[str]:
    """Compile a kwarg used as a regex, as the reference does (keywords are *not*
    escaped: ``"f(x"`` is an error there too). Cached: the same few hundred keywords
    recur across a dataset."""
    try:
        return re.compile(pattern, flags)
    except re.error as e:
        msg = f"keyword {pattern!r} is not a valid regular expression ({e}); IFEval matches keywords as regexes"
        raise ConfigError(msg) from None
