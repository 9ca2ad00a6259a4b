"""Strict and loose IFEval verdicts for one response, and ACT's constraint satisfaction rate.

Strict (``evaluation_lib.test_instruction_following_strict``): the response is non-blank
and passes the check as is. Loose (``..._loose``): it passes on any of 8 variants
(as is; ``*`` removed; first, last, or first and last line removed; and those three with
``*`` removed). Variants are built once per response, not per instruction, and repeats
(a response without ``*``) are checked once; checks are pure, so verdicts are the same.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from filters.verify.ifeval.registry import bind
from pipelines.errors import ConfigError

__all__ = ["MODES", "loose_variants", "response_variants", "satisfaction_rate", "verify"]

Mode = Literal["strict", "loose"]
MODES: tuple[str, ...] = ("strict", "loose")


def loose_variants(response: str) -> list[str]:
    """The 8 loose-mode variants of ``response``, in the reference's order, repeats and blanks kept.

    Raw; all ``*`` removed; first line removed; last line removed; first and last lines
    removed; and the ``*``-removed forms of the three line-removed ones. Line-removed
    variants are stripped. IFBench's loose mode uses the same 8 (:mod:`filters.verify.ifbench`).

    >>> loose_variants("Sure!\\n**Hi**\\nBye")
    ['Sure!\\n**Hi**\\nBye', 'Sure!\\nHi\\nBye', '**Hi**\\nBye', 'Sure!\\n**Hi**', '**Hi**', 'Hi\\nBye', 'Sure!\\nHi', 'Hi']
    """
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        no_first,
        no_last,
        no_both,
        no_first.replace("*", ""),
        no_last.replace("*", ""),
        no_both.replace("*", ""),
    ]


def response_variants(response: str, mode: Mode = "strict") -> tuple[str, ...]:
    """The non-blank texts a check is tried on, in the reference's order, without repeats.

    >>> response_variants("Title\\n*body*\\nbye", "loose")
    ('Title\\n*body*\\nbye', 'Title\\nbody\\nbye', '*body*\\nbye', 'Title\\n*body*', '*body*', 'body\\nbye', 'Title\\nbody', 'body')
    >>> response_variants("   ")
    ()
    """
    if mode == "strict":
        return (response,) if response.strip() else ()
    if mode != "loose":
        msg = f"mode must be one of {', '.join(MODES)}, got {mode!r}"
        raise ConfigError(msg)
    return tuple(v for v in dict.fromkeys(loose_variants(response)) if v.strip())


def verify(
    response: str,
    prompt: str,
    instruction_id_list: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any] | None],
    mode: Mode = "strict",
) -> list[bool]:
    """One verdict per instruction, exactly as IFEval's reference evaluator gives it.

    Parameters
    ----------
    response, prompt
        The model's answer and the prompt it answers.
    instruction_id_list, kwargs_list
        Parallel lists, as stored per prompt in IFEval's ``input_data.jsonl``.
        ``None`` kwargs are ignored.
    mode
        ``"strict"`` or ``"loose"``.

    Raises
    ------
    ConfigError
        Unknown instruction id, bad kwargs, lists of different lengths, unknown mode.

    Examples
    --------
    >>> verify("HELLO THERE, FRIEND", "Shout.", ["change_case:english_capital", "punctuation:no_comma"], [{}, {}])
    [True, False]
    """
    if len(instruction_id_list) != len(kwargs_list):
        msg = f"got {len(instruction_id_list)} instruction ids but {len(kwargs_list)} kwargs"
        raise ConfigError(msg)
    bound = [bind(iid, kw) for iid, kw in zip(instruction_id_list, kwargs_list)]
    variants = response_variants(response, mode)
    return [any(check(v, prompt=prompt, **kw) for v in variants) for check, kw in bound]


def satisfaction_rate(results: Sequence[bool]) -> float:
    """ACT's constraint satisfaction rate: satisfied / applicable constraints.

    Raises ``ValueError`` for no constraints: the rate is undefined there, and a
    vacuous 1.0 would rank an unconstrained response above every real one.

    >>> satisfaction_rate([True, False, True, True])
    0.75
    """
    if not results:
        msg = "satisfaction_rate needs at least one verdict (no applicable constraints)"
        raise ValueError(msg)
    return sum(1 for r in results if r) / len(results)
