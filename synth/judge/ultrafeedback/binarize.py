"""Binarize rated completions into preference pairs (methods.md 3.4), in TRL's format.

* ``h4`` (HuggingFaceH4/ultrafeedback_binarized ``create_dataset.py``): chosen = the highest
  ``overall_score`` (the first on ties), rejected = a random *other* completion, seed 42;
  ties are kept, as the reference does. ``score_key: mean_rating`` gives the older card's
  (and Zephyr's) variant, chosen by the mean aspect rating.
* ``argilla`` (argilla/ultrafeedback-binarized-preferences): score = mean aspect rating;
  chosen = the best, rejected = a random completion with a strictly lower mean; a prompt
  with none gives no pair (``tie``).
* ``max-min``: chosen = the best, rejected = the worst (the first of each on ties; all
  equal gives ``tie``), the rule of :mod:`pipelines.pairs`.

Completions with no score (all N/A, say) or blank text take no part.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.chat_format import MESSAGES, prompt_messages
from pipelines.errors import ConfigError
from pipelines.pairs import best_and_worst
from pipelines.stage import Stage, check_choice, set_column, split_by_reason
from synth.judge.ultrafeedback.annotate import FINE_GRAINED
from synth.judge.ultrafeedback.pool import COMPLETIONS
from synth.judge.ultrafeedback.seeding import row_rng

METHODS = ("h4", "argilla", "max-min")
SCORE_KEYS = {"overall_score": "overall_score", "mean_rating": FINE_GRAINED}
DEFAULT_SCORE_KEY = {"h4": "overall_score", "argilla": "mean_rating", "max-min": "mean_rating"}
H4_SEED = 42  # random.seed(42) in create_dataset.py


def usable(scores: Sequence[float | None], texts: Sequence[str | None]) -> list[int]:
    """Indices with a finite score and non-blank text.

    >>> usable([1.0, None, float("nan"), 2.0], ["a", "b", "c", " "])
    [0]
    """
    return [i for i, s in enumerate(scores) if s is not None and not math.isnan(s) and i < len(texts) and (texts[i] or "").strip()]


def pick_pair(method: str, scores: Sequence[float | None], texts: Sequence[str | None], rng: np.random.Generator) -> tuple[int, int] | str:
    """(chosen, rejected) indices for one prompt, or the reason it gives no pair.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pick_pair("h4", [7.0, 7.0, 3.0], ["a", "b", "c"], rng)[0]   # ties kept: the first best
    0
    >>> pick_pair("argilla", [4.0, 4.0], ["a", "b"], rng), pick_pair("max-min", [4.0, 4.0], ["a", "b"], rng)
    ('tie', 'tie')
    >>> pick_pair("argilla", [2.0, 4.5, 4.5, 1.0], list("abcd"), rng)[0], pick_pair("max-min", [2.0, 4.5, 1.0], list("abc"), rng)
    (1, (1, 2))
    >>> pick_pair("h4", [5.0], ["a"], rng)
    'too_few_responses'
    """
    pool = usable(scores, texts)
    if len(pool) < 2:
        return "too_few_responses"
    if method == "max-min":
        pick = best_and_worst([scores[i] if i in pool else None for i in range(len(scores))])
        return pick if pick is not None else "tie"
    hi = max(pool, key=lambda i: (scores[i], -i))
    if method == "h4":
        others = [i for i in pool if i != hi]
    else:  # argilla: strictly lower only
        others = [i for i in pool if scores[i] < scores[hi]]  # type: ignore[operator]
        if not others:
            return "tie"
    return hi, int(others[int(rng.integers(len(others)))])


def prompt_id(text: str) -> str:
    """sha256 of the prompt text, as H4's ``prompt_id``."""
    return hashlib.sha256(text.encode()).hexdigest()


class UFBinarize(Stage):
    """One preference pair per prompt from its rated completions.

    Input: ``column``, ``completions``, ``id`` and the score column (``overall_score`` from
    ``uf_critique`` or ``fine-grained_score`` from ``uf_rate``). Output: TRL's ``prompt``,
    ``chosen``, ``rejected`` (message lists), ``score_chosen``, ``score_rejected``, H4's
    ``messages`` (the chosen conversation) and ``prompt_id``, and ``chosen_index`` /
    ``rejected_index`` / ``chosen_model`` / ``rejected_model``; the raw ratings stay in their
    columns. Rejected: ``too_few_responses`` (fewer than two scored, non-blank completions),
    ``tie`` (argilla: nothing strictly below the best; max-min: all equal).
    """

    version = "1"

    def __init__(self, *, method: str = "h4", score_key: str | None = None, column: str = "instruction", seed: int = H4_SEED) -> None:
        check_choice("method", method, METHODS)
        score_key = score_key or DEFAULT_SCORE_KEY[method]
        check_choice("score_key", score_key, tuple(SCORE_KEYS))
        if method == "argilla" and score_key != "mean_rating":
            raise ConfigError("method 'argilla' ranks by the mean aspect rating", hint="drop score_key, or use method h4 or max-min with score_key overall_score")
        self.method, self.score_key, self.column, self.seed = method, score_key, column, int(seed)
        self.score_column = SCORE_KEYS[score_key]
        self.requires = {column: None, "completions": COMPLETIONS, "id": pa.string(), self.score_column: pa.list_(pa.float64())}
        self.adds = {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "messages": MESSAGES, "score_chosen": pa.float64(), "score_rejected": pa.float64(),
                     "chosen_index": pa.int32(), "rejected_index": pa.int32(), "chosen_model": pa.string(), "rejected_model": pa.string(), "prompt_id": pa.string()}
        self.params = {"method": method, "score_key": score_key, "column": column, "seed": seed}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        ids = table.column("id").to_pylist()
        comps = [cs or [] for cs in table.column("completions").to_pylist()]
        scores = [s or [] for s in table.column(self.score_column).to_pylist()]
        rows = table.select([c for c in (self.column, "input") if c in table.column_names]).to_pylist()
        out: dict[str, list[Any]] = {k: [] for k in self.adds}
        reasons: list[str | None] = []
        for key, row, cs, sc in zip(ids, rows, comps, scores):
            texts = [c["text"] for c in cs]
            pick = pick_pair(self.method, sc, texts, row_rng(self.seed, "binarize", key))
            reasons.append(pick if isinstance(pick, str) else None)
            hi, lo = pick if not isinstance(pick, str) else (None, None)
            prompt = prompt_messages(row, self.column)
            chosen = [{"role": "assistant", "content": texts[hi] if hi is not None else ""}]
            rejected = [{"role": "assistant", "content": texts[lo] if lo is not None else ""}]
            user = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
            for k, v in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected), ("messages", prompt + chosen),
                         ("score_chosen", sc[hi] if hi is not None else None), ("score_rejected", sc[lo] if lo is not None else None),
                         ("chosen_index", hi), ("rejected_index", lo), ("chosen_model", cs[hi]["model"] if hi is not None else None),
                         ("rejected_model", cs[lo]["model"] if lo is not None else None), ("prompt_id", prompt_id(user))):
                out[k].append(v)
        for k, typ in self.adds.items():
            table = set_column(table, k, pa.array(out[k], typ))
        return split_by_reason(table, reasons)
