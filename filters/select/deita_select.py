"""deita's score-first, diversity-aware selection (Liu et al. 2024; methods.md section 5.2).

deita (``selection/filter/combined_filter.py``) sorts the pool by its evol score
(complexity x quality) descending and walks it: a candidate is taken if its cosine
similarity to *every* sample taken so far is at most **tau = 0.9**, until the budget
(**6K** or **10K** in the paper) is reached. The walk is
:func:`filters.select.diverse.select_diverse` (exact, blocked); this module holds the sort
key and the stage.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.embeddings import DEFAULT_MODEL, table_embeddings
from filters.select.diverse import select_diverse
from pipelines.errors import ConfigError, SchemaError
from pipelines.stage import Stage, split_by_reason

__all__ = ["DeitaSelect", "score_order"]

DEITA_TAU = 0.9
DEITA_BUDGET = 6000  # deita-6k-v0 (10K for deita-10k-v0)


def score_order(scores: np.ndarray) -> np.ndarray:
    """Row indices by score descending, ties by index (a stable sort), NaN last.

    Examples
    --------
    >>> import numpy as np
    >>> score_order(np.array([1.0, np.nan, 3.0, 1.0])).tolist()
    [2, 0, 3, 1]
    """
    s = np.where(np.isnan(scores), -np.inf, scores.astype(np.float64))
    return np.argsort(-s, kind="stable")



class DeitaSelect(Stage):
    """Take the best-scored rows that are not too similar to better ones, up to a budget.

    Parameters
    ----------
    score_column
        Sort key, descending, stable; nulls last (default ``"deita_score"`` =
        complexity x quality from :mod:`filters.select.deita_score`).
    tau
        Cosine similarity above which a candidate is too close to a taken row (deita: 0.9).
    budget
        Rows to take (deita-6k: 6000, deita-10k: 10000); ``None`` = all that pass.
    column, model
        Text column(s) to embed and the embedding model. deita embeds the whole
        conversation with Mistral-7B's last hidden state; the default here is
        all-MiniLM-L6-v2 on ``instruction`` (pass ``["instruction", "response"]`` to embed
        both).
    embedding_column
        Use this ``list<float32>`` column when present instead of embedding the text.

    Columns: requires ``id``, the score column and the text column(s); adds none; kept
    rows stay in table order.
    Rejection reasons: ``too_similar:<id>`` (the most similar row taken before it) and
    ``over_budget`` (never examined: the budget was full).
    """

    is_global = True
    version = "1"

    def __init__(
        self,
        *,
        score_column: str = "deita_score",
        tau: float = DEITA_TAU,
        budget: int | None = DEITA_BUDGET,
        column: str | Sequence[str] = "instruction",
        model: str = DEFAULT_MODEL,
        embedding_column: str | None = "embedding",
        batch_size: int = 64,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        if not -1.0 <= float(tau) <= 1.0:
            msg = f"deita_select: tau is a cosine similarity in [-1, 1], got {tau}"
            raise ConfigError(msg)
        if budget is not None and int(budget) < 1:
            msg = f"deita_select: budget must be >= 1 or null (no limit), got {budget}"
            raise ConfigError(msg)
        self.columns = [column] if isinstance(column, str) else list(column)
        self.params = {"score_column": score_column, "tau": float(tau), "budget": None if budget is None else int(budget),
                           "column": column, "model": model, "embedding_column": embedding_column, "batch_size": int(batch_size)}
        self.requires = {"id": pa.string(), score_column: None, **{c: None for c in self.columns}}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        p = self.params
        col = table.column(p["score_column"])
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            msg = f"score column '{p['score_column']}' has type {col.type}; expected a number"
            raise SchemaError(msg, stage="deita_select", column=p["score_column"])
        scores = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        emb = table_embeddings(table, self.columns, p["model"], embedding_column=p["embedding_column"], batch_size=p["batch_size"])
        selected, blockers = select_diverse(emb, score_order(scores), p["tau"], p["budget"], return_blockers=True)
        n = table.num_rows
        is_sel = np.zeros(n, bool)
        is_sel[selected] = True
        ids = pc.cast(table.column("id"), pa.string()).combine_chunks()
        similar = pc.binary_join_element_wise("too_similar:", pc.fill_null(pc.take(ids, pa.array(np.maximum(blockers, 0))), ""), "")
        reasons = pc.if_else(pa.array(is_sel), pa.nulls(n, pa.string()),
                             pc.if_else(pa.array(blockers >= 0), similar, pa.scalar("over_budget")))
        return split_by_reason(table, reasons)
