"""Preference pairs from scored responses: the best against the worst, in TRL's format.

Two methods make pairs the same way and differ only in the score: Magpie's DPO recipe
(methods.md 1.10: ``chosen`` = the argmax-reward response, ``rejected`` = the argmin) and
ACT (methods.md 4.1: pairs ``y_i > y_j`` iff ``CSR_i > CSR_j``, ties are uninformative).
This module is that shared rule, pure and model-free, used by
:class:`synth.judge.best_of_n.BestOfNPairs` and :class:`filters.verify.act_pairs.ActPairs`.

Output is TRL's conversational preference format (``prompt`` = [user message], ``chosen`` /
``rejected`` = [assistant message]), which DPOTrainer takes unchanged, plus the chosen
conversation as ``messages`` for SFT.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from pipelines.chat_format import MESSAGES

__all__ = ["PAIR_REASONS", "best_and_worst", "pair_columns", "pair_reason"]

PAIR_REASONS = ("too_few_responses", "tie", "low_margin")


def _usable(scores: Sequence[float | None], responses: Sequence[str | None] | None) -> list[int]:
    """Indices with a score (not None/NaN) and, when ``responses`` is given, non-blank text."""
    return [i for i, s in enumerate(scores)
            if s is not None and not math.isnan(s) and (responses is None or (i < len(responses) and (responses[i] or "").strip()))]


def best_and_worst(scores: Sequence[float | None], responses: Sequence[str | None] | None = None) -> tuple[int, int] | None:
    """Indices of the highest and the lowest score, the first of each on ties.

    Missing scores (None or NaN) and, when ``responses`` is given, blank responses take no
    part: a blank is a failed generation, not a preference. ``None`` when fewer than two
    remain or all remaining scores are equal (a tie teaches nothing).

    Examples
    --------
    >>> best_and_worst([3.0, 9.0, 1.0, 9.0])
    (1, 2)
    >>> best_and_worst([0.0, 1.0, 0.5], ["x", "", "y"])  # the blank best takes no part
    (2, 0)
    >>> best_and_worst([4.0, 4.0]) is None, best_and_worst([7.0, None]) is None
    (True, True)
    """
    pool = _usable(scores, responses)
    if len(pool) < 2:
        return None
    hi = max(pool, key=lambda i: (scores[i], -i))
    lo = min(pool, key=lambda i: (scores[i], i))
    return None if scores[hi] == scores[lo] else (hi, lo)


def pair_reason(scores: Sequence[float | None], responses: Sequence[str | None] | None = None, *, min_margin: float = 0.0) -> str | None:
    """Why a prompt gives no pair, or ``None`` when it gives one.

    ``too_few_responses`` (fewer than two scored, non-blank responses), ``tie`` (all their
    scores equal), ``low_margin`` (best - worst < ``min_margin``).

    Examples
    --------
    >>> pair_reason([1.0]), pair_reason([2.0, 2.0]), pair_reason([1.0, 1.5], min_margin=1.0), pair_reason([1.0, 3.0])
    ('too_few_responses', 'tie', 'low_margin', None)
    """
    pick = best_and_worst(scores, responses)
    if pick is None:
        return "too_few_responses" if len(_usable(scores, responses)) < 2 else "tie"
    hi, lo = pick
    return "low_margin" if scores[hi] - scores[lo] < min_margin else None  # type: ignore[operator]


def pair_columns(
    prompts: Sequence[str | None],
    responses: Sequence[Sequence[str | None] | None],
    scores: Sequence[Sequence[float | None] | None],
    *,
    score_name: str = "score",
    min_margin: float = 0.0,
) -> tuple[dict[str, pa.Array], list[str | None]]:
    """TRL preference columns for each prompt and the reason a prompt gives no pair.

    Parameters
    ----------
    prompts
        The user message of each row.
    responses, scores
        Per row, the sampled responses and one score each (a reward, a CSR).
    score_name
        Prefix of the score columns: ``<score_name>_chosen`` / ``<score_name>_rejected``.
    min_margin
        Smallest best - worst difference that still makes a pair.

    Returns
    -------
    (columns, reasons)
        ``prompt``, ``chosen``, ``rejected``, ``messages`` (message lists, the chosen
        conversation for ``messages``) and the two float64 score columns, one entry per row
        (a row without a usable pair gets its first response twice and null scores, and a
        reason from :func:`pair_reason`: it is rejected, never dropped).

    Examples
    --------
    >>> cols, why = pair_columns(["Q"], [["bad", "good"]], [[1.0, 9.0]])
    >>> cols["chosen"].to_pylist(), cols["score_rejected"].to_pylist(), why
    ([[{'role': 'assistant', 'content': 'good'}]], [1.0], [None])
    """
    types = {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "messages": MESSAGES,
             f"{score_name}_chosen": pa.float64(), f"{score_name}_rejected": pa.float64()}
    out: dict[str, list[Any]] = {k: [] for k in types}
    reasons: list[str | None] = []
    for text, rs, sc in zip(prompts, responses, scores):
        rs, sc = list(rs or []), list(sc or [])
        pick = best_and_worst(sc, rs)
        reasons.append(pair_reason(sc, rs, min_margin=min_margin))
        hi, lo = pick or (0, 0)
        prompt = [{"role": "user", "content": text or ""}]
        chosen = [{"role": "assistant", "content": (rs[hi] if rs else "") or ""}]
        rejected = [{"role": "assistant", "content": (rs[lo] if rs else "") or ""}]
        for k, v in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected), ("messages", prompt + chosen),
                     (f"{score_name}_chosen", sc[hi] if pick else None), (f"{score_name}_rejected", sc[lo] if pick else None)):
            out[k].append(v)
    return {k: pa.array(v, types[k]) for k, v in out.items()}, reasons
