"""Scoring one response against a prompt's IFBench instructions, strict or loose.

Same protocol as IFEval (google-research ``evaluation_lib.py``, reused unchanged by
allenai/IFBench):

* **strict**: an instruction is followed when ``response.strip()`` is non-empty and the
  checker passes on the raw response;
* **loose**: it is followed when the checker passes on *any* of 8 variants of the
  response that is non-empty once stripped (IFEval's own, :func:`filters.verify.ifeval.loose_variants`,
  re-exported here). Loose forgives a preamble line, a closing line and markdown ``*``
  emphasis.

Kwargs come as stored in ``IFBench_test.jsonl``, where every instruction carries every
possible key and unused ones are ``None``: ``None`` values are dropped before the
checker is called, and integral floats (``5.0``, as the file stores counts) become ints.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from filters.verify.ifbench.registry import IFBENCH_CHECKERS
from filters.verify.ifeval.verifier import loose_variants, response_variants
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["loose_variants", "verify_ifbench"]

_MODES = ("strict", "loose")


def _as_int_if_integral(value: Any) -> Any:
    # IFBench_test.jsonl stores counts as floats (``"N": 5.0``): the file went through a
    # dataframe, whose columns mix ints with NaN-for-missing. ``5.0`` means 5; ``5.5``
    # stays a float and the checker rejects it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@functools.cache
def _signature(checker: Callable[..., bool]) -> inspect.Signature:
    return inspect.signature(checker)


def _checker_kwargs(instruction_id: str, kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``kwargs`` without ``None`` values, checked against the checker's signature."""
    if kwargs is None:
        kwargs = {}
    if not hasattr(kwargs, "items"):
        msg = f"kwargs for '{instruction_id}' must be a mapping, got {type(kwargs).__name__}"
        raise ConfigError(msg)
    args = {k: _as_int_if_integral(v) for k, v in kwargs.items() if v is not None}
    try:
        _signature(IFBENCH_CHECKERS[instruction_id]).bind("", prompt="", **args)
    except TypeError as e:
        msg = f"bad kwargs for '{instruction_id}': {e}; got keys {sorted(args)}"
        raise ConfigError(msg) from None
    return args


def verify_ifbench(
    response: str,
    prompt: str,
    instruction_id_list: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any] | None],
    *,
    mode: Literal["strict", "loose"] = "strict",
) -> list[bool]:
    """Whether ``response`` follows each IFBench instruction of a prompt.

    Parameters
    ----------
    response
        The model's answer.
    prompt
        The full prompt (passed to every checker as ``prompt=``).
    instruction_id_list
        IFBench ids, e.g. ``"count:numbers"``; see ``IFBENCH_CHECKERS``.
    kwargs_list
        One mapping per id, as in ``IFBench_test.jsonl``; ``None`` values are dropped.
    mode
        ``"strict"`` or ``"loose"`` (see the module notes).

    Returns
    -------
    list[bool]
        One verdict per instruction, in order. Prompt-level: ``all(...)``.

    Raises
    ------
    ConfigError
        Unknown id or mode, lists of different lengths, or kwargs the checker does not
        take or finds invalid.

    Examples
    --------
    >>> verify_ifbench("Sure:\\nhello world", "p", ["format:no_whitespace"], [{}])
    [False]
    >>> verify_ifbench("Sure:\\nhelloworld", "p", ["format:no_whitespace"], [{}], mode="loose")
    [True]
    """
    if mode not in _MODES:
        msg = f"mode must be 'strict' or 'loose', got {mode!r}"
        raise ConfigError(msg)
    if len(instruction_id_list) != len(kwargs_list):
        msg = (
            f"instruction_id_list has {len(instruction_id_list)} ids but kwargs_list has "
            f"{len(kwargs_list)} entries; they must pair up one to one"
        )
        raise ConfigError(msg)
    candidates = response_variants(response, mode)
    verdicts = []
    for instruction_id, kwargs in zip(instruction_id_list, kwargs_list):
        checker = IFBENCH_CHECKERS.get(instruction_id)
        if checker is None:
            msg = f"unknown IFBench instruction id {instruction_id!r}; known ids are the keys of IFBENCH_CHECKERS"
            raise ConfigError(msg)
        args = _checker_kwargs(instruction_id, kwargs)
        verdicts.append(any(checker(c, prompt=prompt, **args) for c in candidates))
    return verdicts
