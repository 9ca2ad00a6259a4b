"""matplotlib figures of an :class:`~pipelines.inspect.Inspection`: the funnel, tag counts,
score histograms, constraint pass rates, judge ratings.

Figures are built on ``matplotlib.figure.Figure`` directly, never through ``pyplot``: no
global figure registry to leak from a long run, no backend switching, and PNGs render
through Agg in any process (a notebook shows them inline as it shows any Figure).
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from pipelines import inspect as ins_api

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.figure import Figure

    from pipelines.inspect import Inspection

KEPT_COLOR = "#4c9a6a"
SOURCE_COLOR = "#9aa5b1"
REASON_COLORS = ("#d1495b", "#edae49", "#8e6c8a", "#00798c", "#e07a5f", "#6d597a", "#b56576", "#3d5a80")
# the scores people look at first, then everything else numeric
PRIORITY = ("judge_score", "instruct_reward", "deita_score", "complexity", "quality", "ln_ches", "ches", "isa_score", "constraint_satisfaction", "csr_chosen", "csr_rejected", "score_chosen", "score_rejected", "min_neighbor_distance", "repeat_count", "instruction_length", "response_length")


def _figure(width: float, height: float, *, label_chars: int = 6, bottom_in: float = 0.5) -> Figure:
    """A figure with fixed margins: room for ``label_chars`` of y tick labels on the left
    and ``bottom_in`` inches below. Fixed margins, not constrained layout, which draws every
    figure twice (half the time of a card's plots)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    left = min(0.5, (0.25 + 0.075 * label_chars) / width)
    fig.subplots_adjust(left=left, right=0.97, bottom=min(0.6, bottom_in / height), top=1 - min(0.3, 0.35 / height))
    return fig


def _integer_ticks(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def png_bytes(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def funnel_figure(stages: list[dict[str, Any]], *, source_rows: int | None = None) -> Figure:
    """Rows per stage as horizontal bars: kept, then the rejected rows split by reason.

    The first bar is the source (when ``source_rows`` is known): the eye follows the
    rows down the pipeline, as data-juicer's tracer shows what each filter dropped.
    """
    names = (["source"] if source_rows is not None else []) + [s.get("name", "") for s in stages]
    reasons = sorted({r for s in stages for r in (s.get("reasons") or {})})
    legend_rows = -(-(2 + len(reasons)) // 4)
    fig = _figure(8, 1.5 + 0.42 * max(1, len(names)), label_chars=max((len(n) for n in names), default=6), bottom_in=0.55 + 0.22 * legend_rows)
    ax = fig.add_subplot()
    colors = {r: REASON_COLORS[i % len(REASON_COLORS)] for i, r in enumerate(reasons)}
    offset = 1 if source_rows is not None else 0
    y = list(range(len(names)))[::-1]
    if source_rows is not None:
        ax.barh(y[:1], [source_rows], color=SOURCE_COLOR, label="source rows")
    ax.barh(y[offset:], [int(s.get("kept", 0)) for s in stages], color=KEPT_COLOR, label="kept")
    for k, r in enumerate(reasons):
        left = [int(s.get("kept", 0)) + sum(int((s.get("reasons") or {}).get(q, 0)) for q in reasons[:k]) for s in stages]
        width = [int((s.get("reasons") or {}).get(r, 0)) for s in stages]
        ax.barh(y[offset:], width, left=left, color=colors[r], label=f"rejected: {r}")
    top = max([int(s.get("rows_in", 0)) for s in stages] + [source_rows or 0, 1])
    labels = ([f"{source_rows}"] if source_rows is not None else []) + [f"{int(s.get('kept', 0))} kept / {int(s.get('rows_in', 0))} in" for s in stages]
    ends = ([source_rows] if source_rows is not None else []) + [int(s.get("rows_in", 0)) for s in stages]
    for yi, end, text in zip(y, ends, labels):
        ax.text(end + top * 0.01, yi, text, va="center", fontsize=8)
    ax.set_yticks(y, names)
    _integer_ticks(ax.xaxis)
    ax.set_xlim(0, top * 1.28)
    ax.set_xlabel("rows")
    ax.set_title("Rows per stage (kept, rejected by reason)")
    fig.legend(loc="lower center", ncols=min(4, 2 + len(reasons)), fontsize=8, frameon=False)
    return fig


def funnel_figure_for(ins: Inspection) -> Figure:
    """:func:`funnel_figure` of an inspection (its stages and source rows)."""
    return funnel_figure(ins.stages, source_rows=ins.meta.get("source_rows"))


def counts_figure(counts: pl.DataFrame, *, title: str, top: int = 15) -> Figure:
    """Horizontal bars of a :func:`~pipelines.inspect.value_counts` frame (``value, rows``)."""
    head = counts.head(top)
    values = [str(v)[:40] for v in head.get_column("value").to_list()][::-1]
    fig = _figure(6, 1.1 + 0.3 * max(1, head.height), label_chars=max((len(v) for v in values), default=4))
    ax = fig.add_subplot()
    ax.barh(values, head.get_column("rows").to_list()[::-1], color="#00798c")
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("rows")
    ax.set_title(title + (f" (top {top} of {counts.height})" if counts.height > top else ""))
    return fig


def histogram_figure(values: pl.Series, *, title: str, bins: int = 20) -> Figure:
    """A histogram of numeric values (a constant column is one bar)."""
    fig = _figure(6, 3)
    ax = fig.add_subplot()
    arr = values.to_numpy()
    ax.hist(arr, bins=bins if len(set(arr.tolist())) > 1 else 1, color="#3d5a80")
    _integer_ticks(ax.yaxis)
    ax.set_ylabel("rows")
    ax.set_title(f"{title} (n={len(arr)}, mean {arr.mean():.3g})" if len(arr) else title)
    return fig


def pass_rate_figure(rates: pl.DataFrame) -> Figure:
    """Pass rate per constraint type (a :func:`~pipelines.inspect.constraint_pass_rates` frame)."""
    fig = _figure(7, 1.1 + 0.28 * max(1, rates.height), label_chars=max((len(v) for v in rates.get_column("instruction_id").to_list()), default=4))
    ax = fig.add_subplot()
    ax.barh(rates.get_column("instruction_id").to_list()[::-1], rates.get_column("pass_rate").to_list()[::-1], color="#4c9a6a")
    ax.set_xlim(0, 1)
    ax.set_xlabel("pass rate")
    ax.set_title("Constraint pass rate by type")
    return fig


def ratings_figure(ratings: pl.DataFrame) -> Figure:
    """Mean judge rating per aspect, one bar per model (a :func:`~pipelines.inspect.judge_ratings` frame)."""
    aspects = sorted(set(ratings.get_column("aspect").to_list()))
    models = sorted(set(ratings.get_column("model").to_list()))
    fig = _figure(max(5, 1.2 * len(aspects) * max(1, len(models)) ** 0.5), 3.2)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(models))
    lookup = {(a, m): v for a, m, v in ratings.select("aspect", "model", "mean").iter_rows()}
    for k, m in enumerate(models):
        xs = [i + k * width for i in range(len(aspects))]
        ax.bar(xs, [lookup.get((a, m), 0.0) or 0.0 for a in aspects], width=width, label=m, color=REASON_COLORS[k % len(REASON_COLORS)])
    ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(aspects))], aspects, fontsize=8)
    ax.set_ylabel("mean rating")
    ax.set_title("Judge ratings by aspect and model")
    ax.legend(fontsize=7, frameon=False)
    return fig


def figures(ins: Inspection, *, max_numeric: int = 6, max_categorical: int = 6) -> dict[str, Figure]:
    """Every plot that fits the data, by name: ``funnel`` (runs), ``count_<column>`` for tag
    columns, ``hist_<column>`` for scores and lengths, ``constraint_pass_rates``,
    ``judge_ratings``. Columns that are absent simply give no plot."""
    out: dict[str, Figure] = {}
    if ins.stages:
        out["funnel"] = funnel_figure_for(ins)
    df = ins.rows
    if df is None or df.height == 0:
        return out
    for c in ins_api.categorical_columns(df)[:max_categorical]:
        out[f"count_{c}"] = counts_figure(ins_api.value_counts(df, c), title=c)
    numeric = ins_api.numeric_columns(df)
    ordered = [c for c in PRIORITY if c in numeric] + [c for c in numeric if c not in PRIORITY]
    for c in ordered[:max_numeric]:
        v = ins_api.numeric_values(df, c)
        if v.len():
            out[f"hist_{c}"] = histogram_figure(v, title=c)
    rates = ins_api.constraint_pass_rates(df)
    if rates.height:
        out["constraint_pass_rates"] = pass_rate_figure(rates)
    ratings = ins_api.judge_ratings(df)
    if ratings.height:
        out["judge_ratings"] = ratings_figure(ratings)
    return out
