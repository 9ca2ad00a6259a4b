"""One self-contained HTML report of a dataset or a run, and the same content as rich tables.

The HTML file carries everything inline (PNG figures as base64 ``data:`` URIs, CSS in a
``<style>`` block, no script): it can be mailed, attached to a CI run or opened offline.
Sections: summary, funnel (figure and table), rejected rows by stage and reason with
examples, plots, columns, sample rows, chosen/rejected pairs, near-duplicate clusters and a
CodecLM lineage, each only where the data has it.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import inspect as ins_api
from pipelines.inspect import Inspection

if TYPE_CHECKING:
    import polars as pl

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .85em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; vertical-align: top; text-align: left; max-width: 420px; overflow-wrap: anywhere; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; } .plots figure { margin: 0; }
.plots img, img.funnel { border: 1px solid #eee; max-width: 100%; }
code { background: #f6f6f6; padding: 0 3px; } .muted { color: #777; }
"""


def _img(name: str, png: bytes, *, cls: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="plot-{html.escape(name)}" class="{cls}" alt="{html.escape(name)}" src="data:image/png;base64,{data}">'


def frame_html(df: pl.DataFrame, *, max_rows: int = 50, table_id: str = "") -> str:
    """A polars frame as an HTML table, values escaped, lists joined, numbers right-aligned."""
    head = df.head(max_rows)
    numeric = {c for c, dt in head.schema.items() if dt.is_numeric()}
    id_attr = f' id="{html.escape(table_id)}"' if table_id else ""
    out = [f"<table{id_attr}><thead><tr>"]
    out += [f"<th>{html.escape(c)}</th>" for c in head.columns]
    out.append("</tr></thead><tbody>")
    for row in head.iter_rows():
        out.append("<tr>")
        for c, v in zip(head.columns, row):
            if isinstance(v, list):
                v = " | ".join(str(x) for x in v if x is not None)
            cls = ' class="num"' if c in numeric else ""
            out.append(f"<td{cls}>{'' if v is None else html.escape(str(v))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    if df.height > max_rows:
        out.append(f'<p class="muted">{df.height - max_rows} more rows not shown.</p>')
    return "".join(out)


def report_sections(ins: Inspection) -> list[tuple[str, str, Any]]:
    """The report's content as (section id, title, frame or figure name) triples, shared by
    the HTML and the terminal so both show the same things."""
    import polars as pl

    df = ins.rows
    sections: list[tuple[str, str, Any]] = []
    if ins.stages:
        sections.append(("funnel", "Rows per stage", ins_api.funnel(ins)))
        ex = ins_api.rejected_examples(ins)
        if ex.height:
            sections.append(("rejected", "Rejected rows by stage and reason", ex))
    sections.append(("columns", "Columns", ins_api.column_summary(df)))
    for c in ins_api.categorical_columns(df):
        sections.append((f"counts-{c}", f"{c}", ins_api.value_counts(df, c)))
    num = ins_api.numeric_summary(df)
    if num.height:
        sections.append(("scores", "Scores and lengths", num))
    rates = ins_api.constraint_pass_rates(df)
    if rates.height:
        sections.append(("constraints", "Constraint pass rates", rates))
    ratings = ins_api.judge_ratings(df)
    if ratings.height:
        sections.append(("ratings", "Judge ratings by aspect and model", ratings))
    if {"chosen", "rejected"} <= set(df.columns):
        sections.append(("pairs", "Chosen and rejected", ins_api.pairs(df)))
    dups = ins_api.duplicate_clusters(ins, limit=10)
    if dups.height:
        sections.append(("duplicates", "Near-duplicate clusters", dups))
    for frame, which in ((df, "kept"), (ins.rejected, "rejected")):  # CodecLM: a kept row's rounds, else a rejected one's
        if frame is not None and "lineage" in frame.columns and frame.filter(pl.col("lineage").list.len() > 0).height:
            sections.append(("lineage", f"Lineage of a {which} CodecLM row", ins_api.lineage(frame)))
            break
    sections.append(("sample", "Sample rows", ins_api.sample_rows(df)))
    return sections


def _summary_line(ins: Inspection) -> str:
    m = ins.meta
    bits = [f"{ins.rows.height} rows", f"{ins.rows.width} columns"]
    if m.get("source"):
        bits.append(f"from {m['source']}" + (f" ({m['source_rows']} rows)" if m.get("source_rows") is not None else ""))
    if ins.stages:
        bits.append(f"{len(ins.stages)} stages, {sum(int(s.get('rejected', 0)) for s in ins.stages)} rows rejected")
    return ", ".join(bits)


def html_report(path_or_ins: str | Path | Inspection, *, title: str | None = None) -> str:
    """The whole report as one self-contained HTML string (write it with ``Path.write_text``)."""
    from pipelines.plots import figures, png_bytes

    ins = path_or_ins if isinstance(path_or_ins, Inspection) else ins_api.open_path(path_or_ins)
    name = ins.meta.get("name") or ins.path.name
    title = title or f"aligncraft report: {name}"
    figs = figures(ins)
    pngs = {k: png_bytes(f) for k, f in figs.items()}
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style></head><body>"]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    parts.append(f'<p id="summary">{html.escape(_summary_line(ins))}. <span class="muted">{html.escape(str(ins.path))} ({ins.kind})</span></p>')
    if ins.meta.get("command"):
        parts.append(f"<p>Reproduce: <code>{html.escape(str(ins.meta['command']))}</code></p>")
    others = {k: v for k, v in pngs.items() if k != "funnel"}
    for sid, heading, frame in report_sections(ins):
        if sid == "columns" and others:  # the plots right after what the run did to the rows
            parts.append('<section id="plots"><h2>Plots</h2><div class="plots">')
            parts += [f"<figure>{_img(k, v)}<figcaption class=\"muted\">{html.escape(k)}</figcaption></figure>" for k, v in others.items()]
            parts.append("</div></section>")
        parts.append(f'<section id="{html.escape(sid)}"><h2>{html.escape(heading)}</h2>')
        if sid == "funnel" and "funnel" in pngs:
            parts.append(_img("funnel", pngs["funnel"], cls="funnel"))
        parts.append(frame_html(frame, table_id=f"table-{sid}"))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def terminal_tables(path_or_ins: str | Path | Inspection, *, max_rows: int = 15) -> list[Any]:
    """The report's sections as rich renderables (a headline, then one table per section),
    for ``rich.console.Console.print``; nothing is printed here."""
    from rich.table import Table
    from rich.text import Text

    ins = path_or_ins if isinstance(path_or_ins, Inspection) else ins_api.open_path(path_or_ins)
    out: list[Any] = [Text(f"{ins.path}: {_summary_line(ins)}", style="bold")]
    for sid, heading, frame in report_sections(ins):
        t = Table(title=heading, title_justify="left", show_lines=False)
        numeric = {c for c, dt in frame.schema.items() if dt.is_numeric()}
        for c in frame.columns:
            t.add_column(c, justify="right" if c in numeric else "left", no_wrap=c in ("column", "stage", "reason", "value", "dtype", "id"), overflow="fold")
        for row in frame.head(max_rows).iter_rows():
            t.add_row(*[_cell(v) for v in row])
        if frame.height > max_rows:
            t.caption = f"{frame.height - max_rows} more rows"
        out.append(t)
    return out


def _cell(v: Any, chars: int = 80) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        v = " | ".join(str(x) for x in v if x is not None)
    s = str(v).replace("\n", " ")
    return s if len(s) <= chars else s[: chars - 3] + "..."
