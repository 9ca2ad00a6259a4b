"""deita's score maths: the expected label value from first-token log-probabilities, and
the evol score (Liu et al., ICLR 2024; methods.md section 5.1-5.2; ``hkust-nlp/deita``
``src/deita/selection/scorer``).

deita prompts a scorer LM with a fixed template (:mod:`filters.select.deita_prompts`), reads
the log-probabilities of the tokens "1".."6" at the **first generated position**,
renormalises them (a softmax over those six logits) and takes the expected value
``sum_i i * p_i``: a continuous score in [1, 6]. Any failure gives **3.0**. A
conversation's **evol score** is ``sum_t complexity_t * quality_t`` over its turns.

How label tokens are matched (:func:`label_logprobs`): an engine reports the top-k
alternatives as ``{decoded token text: logprob}``, so a digit can arrive as ``"3"``, ``" 3"``
or ``"▁3"``. Every key whose text, stripped of whitespace and SentencePiece's ``▁``, equals a
label counts for that label, and variants are combined with log-sum-exp (their
probabilities add: both are ways to answer "3"). A label absent from the top-k counts as
probability 0 (logprob -inf): with a top-k of 20 a general chat model can leave rare digits
out, which only removes their (small) share. If no label is in the top-k at all, there is
nothing to renormalise and :class:`~pipelines.errors.ParseError` is raised. (deita's vLLM
path instead returns 3.0 as soon as any one of the six ids is missing from its top 1000.)
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pipelines.errors import ParseError

__all__ = ["DEITA_FALLBACK", "DEITA_LABELS", "evol_score", "expected_score", "format_top_logprobs", "label_logprobs"]

DEITA_LABELS = ("1", "2", "3", "4", "5", "6")
DEITA_FALLBACK = 3.0  # deita's Scorer.infer_score returns 3.0 on any failure


def _strip_token(token: str) -> str:
    return token.replace("\u2581", " ").replace("\u0120", " ").strip()


def label_logprobs(logprobs_by_token: Mapping[str, float], labels: Sequence[str] = DEITA_LABELS) -> list[float]:
    """Log-probability of each label: log-sum-exp over the tokens that spell it.

    A token spells a label if it equals it once surrounding whitespace (and the ``▁``/``Ġ``
    space markers of SentencePiece and byte-level BPE) is stripped. A label with no such
    token gets ``-inf``.

    Examples
    --------
    >>> label_logprobs({"3": -1.0, " 3": -1.0, "4": -2.0, "Hello": -0.1}, ["3", "4", "5"])
    [-0.3068528194400547, -2.0, -inf]
    """
    found: dict[str, list[float]] = {lab: [] for lab in labels}
    for token, lp in logprobs_by_token.items():
        key = _strip_token(token)
        if key in found and lp is not None and not math.isnan(lp):
            found[key].append(float(lp))
    return [_logsumexp(found[lab]) for lab in labels]


def _logsumexp(values: Sequence[float]) -> float:
    finite = [v for v in values if v != -math.inf]
    if not finite:
        return -math.inf
    m = max(finite)
    return m + math.log(sum(math.exp(v - m) for v in finite))


def expected_score(logprobs_by_token: Mapping[str, float], labels: Sequence[str] = DEITA_LABELS) -> float:
    """deita's score: the expected label value (1 for the first label ... 6 for the sixth)
    under the label probabilities renormalised to sum to 1.

    Parameters
    ----------
    logprobs_by_token
        The top-k ``{token text: logprob}`` of the first generated position.
    labels
        The label strings, in score order (deita: ``"1"`` ... ``"6"``).

    Returns
    -------
    float
        A score in ``[1, len(labels)]``.

    Raises
    ------
    ParseError
        No label token is among the alternatives (the raw text lists them).

    Examples
    --------
    >>> expected_score({"1": -1.0, "2": -1.0, "3": -1.0, "4": -1.0, "5": -1.0, "6": -1.0})
    3.5
    >>> expected_score({"6": -0.01, "The": -5.0})
    6.0
    >>> expected_score({" 2": -0.7, "4": -0.7})   # "1", "3", "5", "6" not in the top-k
    3.0
    """
    lps = label_logprobs(logprobs_by_token, labels)
    m = max(lps)
    if m == -math.inf:
        msg = f"none of the labels {list(labels)} is among the top-{len(logprobs_by_token)} tokens"
        raise ParseError(msg, raw=format_top_logprobs(logprobs_by_token))
    weights = [math.exp(lp - m) for lp in lps]
    total = sum(weights)
    return sum((i + 1) * w for i, w in enumerate(weights)) / total


def evol_score(complexities: Sequence[float], qualities: Sequence[float]) -> float:
    """deita's evol score: ``sum_t complexity_t * quality_t`` over the turns of a row.

    Examples
    --------
    >>> evol_score([2.0], [3.5])
    7.0
    >>> evol_score([2.0, 4.0], [3.0, 1.5])
    12.0
    """
    if len(complexities) != len(qualities):
        msg = f"evol_score: {len(complexities)} complexity scores but {len(qualities)} quality scores"
        raise ValueError(msg)
    return float(sum(c * q for c, q in zip(complexities, qualities)))


def format_top_logprobs(logprobs_by_token: Mapping[str, float], n: int = 10) -> str:
    """The ``n`` most likely alternatives as text, for ``reject_raw``.

    >>> format_top_logprobs({"The": -0.1, "1": -3.0})
    "'The': -0.100, '1': -3.000"
    """
    top = sorted(logprobs_by_token.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{tok!r}: {lp:.3f}" for tok, lp in top)
