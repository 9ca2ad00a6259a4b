"""CHES filtering of preference pairs (Razin et al., ICLR 2025; methods.md section 7): drop
the pairs whose responses look alike to the policy, the ones that make DPO lower the
preferred response's likelihood (likelihood displacement).

The paper scores every pair with the **model that will be trained** and, on SORRY-Bench
refusal pairs, trains only on the **5 % with the lowest length-normalised CHES** (19
pairs); that kept Llama-3-8B-Instruct refusing where plain DPO dropped its refusal rate
from 74.4 % to 33.4 %. Hence the defaults: ``score="ln_ches"``, ``mode="keep_lowest"``,
``fraction=0.05``. ``drop_top`` (remove only the most similar pairs) and
``quantile_window`` (the reference's quantile slices, section 5 of the paper) are the
other modes. Maths: :mod:`filters.select.ches_math`; model code:
:mod:`filters.select.ches_states`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from filters.select.ches_math import MODES, SCORES, select_by_score
from filters.select.ches_pairs import as_prompt_messages, as_response_messages
from filters.select.ches_states import pair_scores
from pipelines.errors import ConfigError, SchemaError
from pipelines.stage import check_choice, set_column, split_by_reason
from synth.backends.llm import call_in_engine
from synth.backends.llm_stage import LLMStage

__all__ = ["ChesFilter"]

# rejection reasons by side of the kept range (select_by_score: +1 above, -1 below)
_TOP = {1: "ches_top_fraction"}
_WINDOW = {1: "ches_above_window", -1: "ches_below_window"}


def _cells(column: pa.ChunkedArray, name: str) -> list[Any]:
    typ = column.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return column.to_pylist()
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        conv = as_prompt_messages if name == "prompt" else as_response_messages
        return [None if v is None else conv(v) for v in column.to_pylist()]
    msg = f"column '{name}' has type {typ}; expected a string or a list of {{role, content}} messages"
    raise SchemaError(msg, stage="ChesFilter", column=name, hint="run the pair_columns stage first (the ches recipe does)")


class ChesFilter(LLMStage):
    """Score pairs by CHES and LN-CHES under the policy model and keep a CHES range.

    Input: ``prompt`` (string or messages), ``chosen``, ``rejected`` (strings or
    messages), e.g. from ``best_of_n_pairs``, ``act_pairs`` or ``PairColumns``.
    Output: adds ``ches`` and ``ln_ches`` (float64; on the rejected rows too).
    Rejected: ``ches_top_fraction:<score>`` (above the kept range: the most similar
    pairs), ``ches_above_window:<score>`` / ``ches_below_window:<score>`` (outside a
    quantile window), with the selection score after the colon, and pairs that
    cannot be scored: ``empty_pair``, ``empty_prompt``, ``empty_response``,
    ``prompt_too_long``, ``template_mismatch``, ``non_finite_score``. Kept rows keep
    their input order.

    Parameters
    ----------
    score
        ``ln_ches`` (the paper's filter) or ``ches``.
    mode
        ``keep_lowest`` | ``drop_top`` | ``quantile_window`` (see
        :func:`~filters.select.ches_math.select_by_score`).
    fraction, num_samples
        How many pairs the mode keeps (``keep_lowest``, ``quantile_window``) or drops
        (``drop_top``): a fraction of the scored pairs (default 0.05, rounded up) or an
        absolute number (the reference's ``preference_num_samples``).
    quantile
        Centre of a ``quantile_window`` (0 lowest ... 1 highest).
    max_length
        Tokens of prompt + response scored (the reference's 512); longer responses are cut.
    batch_tokens
        Padded tokens per forward pass; default 2048 on CPU, 32768 on a GPU.
    model, engine
        The policy (the model DPO will train) and ``TransformersLLM`` options
        (``dtype: bfloat16``, ``device``). The backend is always ``transformers``:
        vLLM does not expose hidden states.
    """

    requires: ClassVar[Mapping[str, pa.DataType | None]] = {"prompt": None, "chosen": None, "rejected": None}
    adds: ClassVar[Mapping[str, pa.DataType]] = {"ches": pa.float64(), "ln_ches": pa.float64()}
    is_global: ClassVar[bool] = True
    version: ClassVar[str] = "1"

    def __init__(self, *, score: str = "ln_ches", mode: str = "keep_lowest", fraction: float | None = None, num_samples: int | None = None, quantile: float = 0.0, max_length: int = 512, batch_tokens: int | None = None, model: str = "default", backend: str | None = None, engine: dict[str, Any] | None = None) -> None:
        if backend not in (None, "transformers"):
            msg = f"ches_filter needs hidden states, which only the transformers backend gives; got backend {backend!r}"
            raise ConfigError(msg, hint="set backend: transformers on this stage (a recipe's llm.backend applies only where a stage names none)")
        super().__init__(model=model, backend="transformers", engine=engine)
        check_choice("score", score, SCORES)
        check_choice("mode", mode, MODES)
        if fraction is not None and num_samples is not None:
            raise ConfigError("give fraction or num_samples, not both")
        if num_samples is not None and (isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0):
            raise ConfigError(f"num_samples must be a non-negative integer, got {num_samples!r}")
        if fraction is None and num_samples is None:
            fraction = 0.05
        if fraction is not None:
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
                raise ConfigError(f"fraction must be a number in [0, 1], got {fraction!r}")
            fraction = float(fraction)
        if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0.0 <= quantile <= 1.0:
            raise ConfigError(f"quantile must be a number in [0, 1], got {quantile!r}")
        if quantile and mode != "quantile_window":
            raise ConfigError(f"quantile applies to mode quantile_window, not {mode!r}")
        for name, value in (("max_length", max_length), ("batch_tokens", batch_tokens)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
                raise ConfigError(f"{name} must be an integer >= 2, got {value!r}")
        self.score, self.mode, self.fraction, self.num_samples, self.quantile = score, mode, fraction, num_samples, float(quantile)
        self.max_length, self.batch_tokens = max_length, batch_tokens
        self.params.pop("sampling", None)
        self.params.update(score=score, mode=mode, fraction=fraction, num_samples=num_samples, quantile=self.quantile, max_length=max_length, batch_tokens=batch_tokens)

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        prompts, chosen, rejected = (_cells(table.column(c), c) for c in ("prompt", "chosen", "rejected"))
        n = table.num_rows
        reasons: list[str | None] = [None] * n
        todo = [i for i in range(n) if prompts[i] is not None and chosen[i] is not None and rejected[i] is not None]
        for i in set(range(n)) - set(todo):
            reasons[i] = "empty_pair"
        ches = np.full(n, np.nan)
        ln_ches = np.full(n, np.nan)
        if todo:
            out = call_in_engine(self.engine_llm, pair_scores, [prompts[i] for i in todo], [chosen[i] for i in todo], [rejected[i] for i in todo], max_length=self.max_length, batch_tokens=self.batch_tokens)
            ches[todo], ln_ches[todo] = out["ches"], out["ln_ches"]
            for i, err in zip(todo, out["error"]):
                reasons[i] = err
        scores = ln_ches if self.score == "ln_ches" else ches
        for i in todo:
            if reasons[i] is None and not (np.isfinite(ches[i]) and np.isfinite(ln_ches[i])):
                reasons[i] = "non_finite_score"  # a bf16 overflow, say: never a kept NaN
        scored = np.array([i for i in range(n) if reasons[i] is None], dtype=np.int64)
        if len(scored):
            side = select_by_score(scores[scored], mode=self.mode, fraction=self.fraction, num_samples=self.num_samples, quantile=self.quantile)
            names = _WINDOW if self.mode == "quantile_window" else _TOP
            for i, s in zip(scored.tolist(), side.tolist()):
                if s:
                    reasons[i] = f"{names[s]}:{scores[i]:.6g}"
        table = set_column(table, "ches", pa.array(ches, pa.float64(), from_pandas=True))
        table = set_column(table, "ln_ches", pa.array(ln_ches, pa.float64(), from_pandas=True))
        return split_by_reason(table, reasons)
