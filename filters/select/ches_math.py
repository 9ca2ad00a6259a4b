"""CHES maths and CHES-based selection: pure numpy, no model (Razin et al., "Unintentional
Unalignment: Likelihood Displacement in Direct Preference Optimization", ICLR 2025,
https://arxiv.org/abs/2410.08847; methods.md section 7; reference code
``princeton-nlp/unintentional-unalignment``: ``ches/ches.py``,
``compute_preference_similarity_per_example.py``, ``sorrybench_experiment_runner.py``).

For a prompt x, preferred y+ and dispreferred y-, let h_k be the policy's **last-layer**
hidden state (the vector fed to the unembedding) at the position that predicts token k of
the response; the last prompt token predicts y_1. With S = sum_k h_k over a response::

    CHES    = <S+, S->  - ||S+||^2
    LN-CHES = <S+/n+, S-/n-> - ||S+/n+||^2

Higher means more similar responses and more *likelihood displacement* (DPO lowers the
preferred response's log-probability). The paper keeps the **lowest** LN-CHES pairs: its
SORRY-Bench run trains on the 19 lowest of ~380 pairs, **5 %**, which kept Llama-3-8B-
Instruct's refusal rate where plain DPO dropped it from 74.4 % to 33.4 %.

Which positions are summed (the trap): the reference batched code zeroes everything before
the last prompt token and drops the final position -- the hidden state *of* the EOS token,
which predicts nothing -- so an EOS-terminated response of n tokens sums **n + 1** states:
the last prompt token's (predicting y_1), then y_1 ... y_n's (y_n's predicts EOS). The
per-example script slices ``hidden_states[-1][0][query_len - 1:]`` of an un-terminated
sequence: the same n + 1 positions. Causal attention makes the two identical, so the EOS
token never needs to be fed. Length normalisation divides by that count, n + 1.

CHES is computed here as ``<S+, S- - S+>``, which is the same number as the paper's
``<S+, S-> - ||S+||^2`` without subtracting two large, nearly equal terms: identical
responses give exactly 0 (so does LN-CHES), and near-identical ones a small number rather
than rounding noise of size ``||S+||^2 * 1e-7``.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "MODES",
    "SCORES",
    "ches_from_sums",
    "ches_reference",
    "position_mask",
    "quantile_slice",
    "select_by_score",
    "selection_count",
]

SCORES = ("ln_ches", "ches")
MODES = ("keep_lowest", "drop_top", "quantile_window")


def position_mask(prompt_lens: np.ndarray, seq_lens: np.ndarray, width: int) -> np.ndarray:
    """Which positions of a right-padded batch enter S: the last prompt token through the
    last response token, ``prompt_len - 1 <= t < seq_len``.

    Parameters
    ----------
    prompt_lens, seq_lens
        Per sequence, the prompt's token count and prompt + response's (no EOS).
    width
        The padded length of the batch.

    Returns
    -------
    numpy.ndarray
        ``bool`` of shape ``(batch, width)``; row i has ``seq_len - prompt_len + 1`` ones.

    Examples
    --------
    >>> position_mask(np.array([3, 1]), np.array([5, 3]), 6).astype(int)
    array([[0, 0, 1, 1, 1, 0],
           [1, 1, 1, 0, 0, 0]])
    """
    t = np.arange(width)[None, :]
    return (t >= np.asarray(prompt_lens)[:, None] - 1) & (t < np.asarray(seq_lens)[:, None])


def ches_from_sums(sum_chosen: np.ndarray, sum_rejected: np.ndarray, n_chosen: np.ndarray, n_rejected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CHES and length-normalised CHES from summed hidden states, for a batch of pairs.

    Parameters
    ----------
    sum_chosen, sum_rejected
        ``(pairs, hidden)``: S+ and S-, the sums over the summed positions (see the module).
    n_chosen, n_rejected
        ``(pairs,)``: how many positions each sum covers (response tokens + 1).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``ches`` and ``ln_ches``, float64, shape ``(pairs,)``.

    Examples
    --------
    >>> s = np.array([[1.0, 2.0], [1.0, 2.0]])
    >>> ches_from_sums(s, np.array([[1.0, 2.0], [3.0, 0.0]]), np.array([2, 2]), np.array([2, 4]))
    (array([ 0., -2.]), array([ 0.   , -0.875]))
    """
    sp = np.asarray(sum_chosen, dtype=np.float64)
    sm = np.asarray(sum_rejected, dtype=np.float64)
    ches = np.einsum("ij,ij->i", sp, sm - sp)
    mp = sp / np.asarray(n_chosen, dtype=np.float64)[:, None]
    mm = sm / np.asarray(n_rejected, dtype=np.float64)[:, None]
    ln_ches = np.einsum("ij,ij->i", mp, mm - mp)
    return ches, ln_ches


def ches_reference(hidden_chosen: np.ndarray, hidden_rejected: np.ndarray, prompt_len_chosen: int, prompt_len_rejected: int) -> tuple[float, float]:
    """CHES and LN-CHES of one pair, written as the reference per-example script computes
    them (``compute_preference_similarity_per_example.py``): slice ``[query_len - 1:]`` of
    each unpadded sequence's last-layer states, sum, and apply the paper's formula literally.

    Parameters
    ----------
    hidden_chosen, hidden_rejected
        ``(seq_len, hidden)`` states of prompt + response (no EOS, no padding).
    prompt_len_chosen, prompt_len_rejected
        The prompt's token count in each sequence.

    Examples
    --------
    Rows: the prompt's last token, then y_1, y_2 (all three are summed):

    >>> h = np.array([[9.0, 9.0], [1.0, 0.0], [0.0, 1.0]])
    >>> ches_reference(h, h[:2], 1, 1)   # S+ = (10, 10), S- = (10, 9)
    (-10.000000000000028, 9.444444444444443)

    The literal formula leaves rounding noise where the answer is 0 (identical responses);
    :func:`ches_from_sums` gives exactly 0:

    >>> ches_reference(h, h, 1, 1)
    (-2.842170943040401e-14, -3.552713678800501e-15)
    >>> ches_from_sums(h.sum(0)[None], h.sum(0)[None], [3], [3])
    (array([0.]), array([0.]))
    """
    hp = np.asarray(hidden_chosen, dtype=np.float64)[prompt_len_chosen - 1 :]
    hm = np.asarray(hidden_rejected, dtype=np.float64)[prompt_len_rejected - 1 :]
    sp, sm = hp.sum(axis=0), hm.sum(axis=0)
    ches = float(sp @ sm - np.linalg.norm(sp) ** 2)
    lp, lm = hp.shape[0], hm.shape[0]
    ln_ches = float(sp @ sm / (lp * lm) - np.linalg.norm(sp) ** 2 / lp**2)
    return ches, ln_ches


def quantile_slice(order: np.ndarray, quantile: float, num_elements: int) -> np.ndarray:
    """The reference's ``__quantile_slice``: ``num_elements`` items of ``order`` centred on
    ``quantile`` (0 = the start, 1 = the end), shifted inward at the edges.

    Examples
    --------
    >>> quantile_slice(np.arange(10), 0.0, 3)
    array([0, 1, 2])
    >>> quantile_slice(np.arange(10), 0.5, 3)
    array([3, 4, 5])
    >>> quantile_slice(np.arange(10), 1.0, 4)
    array([6, 7, 8, 9])
    """
    idx = int(np.round(quantile * (len(order) - 1)))
    start = max(0, idx - num_elements // 2)
    end = start + num_elements
    if end > len(order):
        end = len(order)
        start = max(0, end - num_elements)
    return order[start:end]


def selection_count(n: int, *, fraction: float | None = None, num_samples: int | None = None) -> int:
    """How many pairs a fraction (rounded up, so 5 % of 19 pairs is 1, not 0) or an
    absolute ``num_samples`` (the reference's ``preference_num_samples``) stands for.

    Examples
    --------
    >>> selection_count(200, fraction=0.05), selection_count(19, fraction=0.05), selection_count(10, num_samples=19)
    (10, 1, 10)
    """
    if num_samples is not None:
        return min(int(num_samples), n)
    assert fraction is not None
    return min(n, math.ceil(round(fraction * n, 9)))


def select_by_score(scores: np.ndarray, *, mode: str, fraction: float | None = None, num_samples: int | None = None, quantile: float = 0.0) -> np.ndarray:
    """Which pairs a CHES selection keeps: 0 = kept, +1 = removed above the kept range,
    -1 = removed below it (only a quantile window removes low scores).

    Pairs are ranked ascending by ``scores`` (ties: earlier row ranks lower, a stable sort),
    as the reference ``argsort``s them.

    Parameters
    ----------
    scores
        One finite score per pair (``ln_ches`` or ``ches``).
    mode
        ``keep_lowest``: keep the lowest ``count`` (the paper's filter);
        ``drop_top``: remove the highest ``count``, keep the rest;
        ``quantile_window``: keep ``count`` centred on ``quantile`` (the reference's
        ``__quantile_slice``; 0 is the same as ``keep_lowest``, 1 keeps the highest).
    fraction, num_samples
        ``count`` as a fraction of the pairs or an absolute number (exactly one).
    quantile
        The window's centre, for ``quantile_window``.

    Examples
    --------
    >>> s = np.array([0.5, -1.0, 3.0, 2.0, -2.0])
    >>> select_by_score(s, mode="keep_lowest", fraction=0.4).tolist()
    [1, 0, 1, 1, 0]
    >>> select_by_score(s, mode="drop_top", num_samples=1).tolist()
    [0, 0, 1, 0, 0]
    >>> select_by_score(s, mode="quantile_window", num_samples=1, quantile=0.5).tolist()
    [0, -1, 1, 1, -1]
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    order = np.argsort(scores, kind="stable")
    count = selection_count(n, fraction=fraction, num_samples=num_samples)
    if mode == "keep_lowest":
        kept = order[:count]
    elif mode == "drop_top":
        kept = order[: n - count]
    elif mode == "quantile_window":
        kept = quantile_slice(order, quantile, count)
    else:
        msg = f"mode must be one of {', '.join(MODES)}, got {mode!r}"
        raise ValueError(msg)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    out = np.ones(n, dtype=np.int8)
    if len(kept):
        lo = int(rank[kept].min())
        out[rank < lo] = -1
        out[kept] = 0
    return out
