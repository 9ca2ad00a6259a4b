"""Information-theoretic subset selection (ISA; Khera, Ghosh, Dutta, arXiv 2411.10545).

What is established (methods.md section 6.1): alignment quality plateaus exponentially with
data size, and ISA embeds each sample, models the embeddings with a **two-component
Gaussian mixture**, and keeps a small subset (**< 10%**, down to ~3.5%) chosen by an
**entropy-based** criterion; the authors' patent ranks samples by their leave-one-out
entropy change ``H(D) - H(D \\ {i})``. No code is public, so the estimator is a reading;
both readings are offered (``score=``):

``"entropy_change"`` (default, the patent's reading)
    With the fitted mixture ``p`` held fixed, the plug-in entropy of the data is
    ``H = -(1/N) sum_j log p(x_j)``. Removing sample ``i`` changes it by exactly
    ``H(D) - H(D \\ {i}) = (-log p(x_i) - H) / (N - 1)``, the cheap per-sample
    approximation of a leave-one-out refit (``N`` refits would cost ``N`` GMM fits); it
    ranks like ``-log p(x_i) / N``. High = the sample is surprising under the model of the
    whole set (carries information the rest does not).
``"posterior_entropy"``
    ``-sum_c g_ic log g_ic`` of the two component responsibilities ``g_ic``: high = the
    sample lies between the two modes (the "ambiguous samples" reading).

The top ``fraction`` (default 0.10) by score are kept, ties to the earlier row. The mixture
is fitted on a PCA projection (default 32 dims): a full-covariance Gaussian in 384
dimensions needs far more samples than a typical pool to be well-conditioned.

**What the default keeps, plainly: the tails.** Under a fixed mixture the entropy change
ranks rows exactly by ``-log p(x_i)``, so ``entropy_change`` keeps the 10% of rows the
mixture finds *least likely*: rare prompts far from both modes, outliers included. That is
the patent's quantity, the only primary source (the PDF's estimator is unverified,
methods.md section 6), so it stays the default; it selects informative rows, not
representative ones. Noise is rare too: run dedup and quality filters before ISA, or choose
``posterior_entropy`` (rows between the two modes). The stage writes which rows it keeps
into its parameters (``keeps``), so the dataset card says it in words.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from filters.embeddings import DEFAULT_MODEL, table_embeddings
from pipelines.errors import ConfigError
from pipelines.stage import Stage, set_column, split_by_reason

__all__ = ["IsaSelect", "entropy_change_scores", "gmm_scores", "posterior_entropy_scores", "top_fraction"]

SCORES = ("entropy_change", "posterior_entropy")
KEEPS = {
    "entropy_change": "the least likely rows under the 2-component GMM (its tails, outliers included)",
    "posterior_entropy": "the rows between the two GMM components (most ambiguous membership)",
}


def entropy_change_scores(log_density: np.ndarray) -> np.ndarray:
    """Leave-one-out change of the plug-in entropy, ``(-log p_i - H) / (N - 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> entropy_change_scores(np.array([0.0, -1.0, -2.0])).round(3).tolist()
    [-0.5, 0.0, 0.5]
    """
    n = len(log_density)
    if n < 2:
        return np.zeros(n)
    h = -float(np.mean(log_density))
    return (-log_density - h) / (n - 1)


def posterior_entropy_scores(resp: np.ndarray) -> np.ndarray:
    """Entropy of each row of a responsibility matrix (``0 log 0 = 0``), in nats.

    Examples
    --------
    >>> import numpy as np
    >>> posterior_entropy_scores(np.array([[1.0, 0.0], [0.5, 0.5]])).round(4).tolist()
    [0.0, 0.6931]
    """
    r = np.clip(resp, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(r > 0, r * np.log(r), 0.0)
    return 0.0 - terms.sum(axis=1)  # "0.0 -" avoids a -0.0 for certain rows


def top_fraction(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the ``ceil(fraction * N)`` highest scores, ties to the earlier row.

    Examples
    --------
    >>> import numpy as np
    >>> top_fraction(np.array([0.1, 0.9, 0.5, 0.9]), 0.5).tolist()
    [False, True, False, True]
    """
    n = len(scores)
    k = min(n, int(np.ceil(fraction * n - 1e-9)))
    mask = np.zeros(n, bool)
    mask[np.argsort(-scores, kind="stable")[:k]] = True
    return mask


def gmm_scores(emb: np.ndarray, *, score: str = "entropy_change", n_components: int = 2, pca_dim: int | None = 32,
               covariance_type: str = "full", seed: int = 0) -> np.ndarray:
    """Fit a Gaussian mixture to ``emb`` (after PCA) and score every row (higher = keep).

    Fewer rows than components (or one distinct point) cannot be modelled: all scores are 0.
    """
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    if score not in SCORES:
        msg = f"score must be one of {', '.join(SCORES)}, got {score!r}"
        raise ConfigError(msg)
    x = np.asarray(emb, dtype=np.float64)
    n = x.shape[0]
    if n <= n_components:
        return np.zeros(n)
    if pca_dim is not None and pca_dim < x.shape[1]:
        dim = max(1, min(int(pca_dim), n - 1))
        x = PCA(n_components=dim, random_state=seed).fit_transform(x)
    gmm = GaussianMixture(n_components=n_components, covariance_type=covariance_type, random_state=seed, reg_covar=1e-5)
    gmm.fit(x)
    if score == "entropy_change":
        return entropy_change_scores(gmm.score_samples(x))
    return posterior_entropy_scores(gmm.predict_proba(x))


class IsaSelect(Stage):
    """Keep the ``fraction`` of rows that carry the most information under a 2-GMM (ISA).

    Parameters
    ----------
    column, model
        Text column(s) to embed (default ``"instruction"``; for preference pairs e.g.
        ``["prompt", "chosen"]``) and the embedding model (all-MiniLM-L6-v2).
    fraction
        Share of rows to keep (paper: < 10%, down to ~3.5%; default 0.10).
    score
        ``"entropy_change"`` (default: keeps the least likely rows, the tails) or
        ``"posterior_entropy"`` (keeps the rows between the two modes): see the module
        docstring for why the default reads the patent literally.
    n_components, pca_dim, covariance_type, seed
        The mixture (paper: 2 components), the PCA dimension before fitting (``None`` =
        none) and the seed of both.
    embedding_column
        Use this ``list<float32>`` column when present instead of embedding the text.

    Columns: requires ``id`` and the text column(s); adds ``isa_score`` (float64) to kept
    and rejected rows.
    Rejection reasons: ``isa_not_selected``.
    """

    is_global = True
    version = "1"
    adds: ClassVar[dict[str, pa.DataType]] = {"isa_score": pa.float64()}

    def __init__(
        self,
        *,
        column: str | Sequence[str] = "instruction",
        model: str = DEFAULT_MODEL,
        fraction: float = 0.10,
        score: str = "entropy_change",
        n_components: int = 2,
        pca_dim: int | None = 32,
        covariance_type: str = "full",
        seed: int = 0,
        embedding_column: str | None = "embedding",
        batch_size: int = 64,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        if not 0.0 < float(fraction) <= 1.0:
            msg = f"isa_select: fraction must be in (0, 1], got {fraction}"
            raise ConfigError(msg)
        if score not in SCORES:
            msg = f"isa_select: score must be one of {', '.join(SCORES)}, got {score!r}"
            raise ConfigError(msg)
        if covariance_type not in ("full", "tied", "diag", "spherical"):
            msg = f"isa_select: covariance_type must be full, tied, diag or spherical, got {covariance_type!r}"
            raise ConfigError(msg)
        if int(n_components) < 1 or (pca_dim is not None and int(pca_dim) < 1):
            msg = f"isa_select: n_components and pca_dim must be >= 1, got {n_components} and {pca_dim}"
            raise ConfigError(msg)
        self.columns = [column] if isinstance(column, str) else list(column)
        self.params = {"column": column, "model": model, "fraction": float(fraction), "score": score, "n_components": int(n_components),
                           "pca_dim": None if pca_dim is None else int(pca_dim), "covariance_type": covariance_type, "seed": int(seed),
                           "embedding_column": embedding_column, "batch_size": int(batch_size), "keeps": KEEPS[score]}
        self.requires = {"id": pa.string(), **{c: None for c in self.columns}}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        p = self.params
        emb = table_embeddings(table, self.columns, p["model"], embedding_column=p["embedding_column"], batch_size=p["batch_size"])
        scores = gmm_scores(emb, score=p["score"], n_components=p["n_components"], pca_dim=p["pca_dim"],
                            covariance_type=p["covariance_type"], seed=p["seed"])
        keep = top_fraction(scores, p["fraction"])
        out = set_column(table, "isa_score", pa.array(scores, pa.float64()))
        reasons = pa.array(np.where(keep, None, "isa_not_selected"), pa.string())
        return split_by_reason(out, reasons)
