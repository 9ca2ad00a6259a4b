"""Views of a dataset or a run as polars frames, for notebooks, the HTML report and cards.

Nothing here prints: every function returns a ``polars.DataFrame`` (figures live in
:mod:`pipelines.plots`, the report and terminal tables in :mod:`pipelines.report`).
:func:`open_path` takes any of

* an output folder (``out/<recipe>``: ``data/``, ``dataset/``, ``rejected/``, ``stats.json``),
* a run folder (``out/<recipe>/run``: ``manifest.json``, ``stages/``), read even while the
  run is going: the last stage's finished shards are the rows so far,
* a ``datasets`` save_to_disk folder, a parquet file or folder, a JSON Lines, JSON or CSV file,

and gives an :class:`Inspection`: the rows, the rejected rows (``reject_stage``,
``reject_reason``, ``reject_raw``), and, for runs, the funnel of rows per stage.

>>> from pipelines.inspect import open_path, funnel, rejected_examples   # doctest: +SKIP
>>> ins = open_path("out/magpie-sft")                                       # doctest: +SKIP
>>> rejected_examples(ins, n=2)                                              # doctest: +SKIP

The column logic is written for whichever columns exist: Magpie's tags, lengths and scores,
ACT's constraint verdicts, UltraFeedback's per-aspect ratings, TRL pairs, dedup reasons,
CodecLM's ``lineage``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import InputError, SchemaError
from pipelines.stage import RAW, REASON, STAGE

if TYPE_CHECKING:
    import polars as pl

# Magpie's published tag names first, then other short categorical columns this project adds
CATEGORICAL = ("task_category", "difficulty", "input_quality", "language", "other_task_category", "winner", "codeclm_status", "chosen_model", "rejected_model", "constraint_source", "reward_model")
# columns that look numeric but say nothing about the data
NOT_SCORES = ("row_seed", "embedding", "shard", "chosen_index", "rejected_index", "judge_replies", "judge_parse_failures", "kept_round", "codeclm_round")
TEXT_COLUMNS = ("instruction", "prompt", "question", "text", "messages", "chosen", "response")
DUPLICATE = "duplicate_of:"


@dataclass(frozen=True)
class Inspection:
    """What :func:`open_path` found at a path.

    Attributes
    ----------
    path, kind : the path, and ``"output"``, ``"run"`` or ``"dataset"``.
    rows : the final (kept) rows.
    rejected : every rejected row, with ``reject_stage`` and ``reject_reason`` (empty when the
        path is a plain dataset).
    stages : one dict per stage (name, type, rows_in, kept, rejected, reasons, seconds), as the
        run's manifest or ``stats.json`` has them; empty for a plain dataset.
    meta : recipe name, source description and rows, command, models, where known.
    """

    path: Path
    kind: str
    rows: Any
    rejected: Any
    stages: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


# -- opening -----------------------------------------------------------------------
def open_path(path: str | Path) -> Inspection:
    """Open an output folder, a run folder or any dataset file as an :class:`Inspection`.

    Raises
    ------
    InputError
        When the path does not exist or holds nothing readable.
    """
    p = Path(path)
    if not p.exists():
        msg = f"nothing at {p}"
        raise InputError(msg, path=str(p), hint="give an output folder (out/<recipe>), its run/ folder, or a dataset file")
    if (p / "manifest.json").is_file():
        return _open_run(p)
    if (p / "stats.json").is_file() or ((p / "run" / "manifest.json").is_file() and (p / "data").is_dir()):
        return _open_output(p)
    if (p / "run" / "manifest.json").is_file():  # an output folder whose run has not finished
        return _open_run(p / "run")
    return Inspection(p, "dataset", _read_rows(p), _empty())


def load(path: str | Path) -> pl.DataFrame:
    """The rows of any path :func:`open_path` takes, as a polars DataFrame."""
    return open_path(path).rows


def rejected(path: str | Path) -> pl.DataFrame:
    """Every rejected row of an output or run folder, with ``reject_stage``."""
    return open_path(path).rejected


def _empty() -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(schema={STAGE: pl.String, REASON: pl.String})


def _read_rows(p: Path) -> pl.DataFrame:
    import polars as pl

    from pipelines.output import read_dataset

    if p.is_dir() and not (p / "dataset_info.json").is_file() and not (p / "dataset").is_dir():
        files = sorted(p.glob("*.parquet"))
        if files:
            return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    return pl.from_arrow(read_dataset(p))


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    import polars as pl

    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else _empty()


def _with_stage(df: pl.DataFrame, stage: str) -> pl.DataFrame:
    import polars as pl

    return df.with_columns(pl.lit(stage).alias(STAGE))


def _open_output(p: Path) -> Inspection:
    import polars as pl

    data = sorted((p / "data").glob("*.parquet"))
    rows = pl.concat([pl.read_parquet(f) for f in data], how="diagonal_relaxed") if data else _read_rows(p)
    rej = _concat([_with_stage(pl.read_parquet(f), f.stem.split("-", 1)[-1]) for f in sorted((p / "rejected").glob("*.parquet"))])
    stats = json.loads((p / "stats.json").read_text()) if (p / "stats.json").is_file() else {}
    stages = stats.get("stages")
    if stages is None and (p / "run" / "manifest.json").is_file():
        stages = json.loads((p / "run" / "manifest.json").read_text())["stages"]
    meta = {k: stats[k] for k in ("name", "description", "source", "source_rows", "command", "models", "seconds") if k in stats}
    return Inspection(p, "output", rows, rej, list(stages or []), meta)


def _open_run(run: Path) -> Inspection:
    import polars as pl
    import yaml

    from pipelines.run_store import StageDir

    manifest = json.loads((run / "manifest.json").read_text())
    stages = manifest.get("stages", [])
    dirs = [StageDir.at(run / s["dir"], s["name"]) for s in stages]
    kept = [_frame(t) for t in dirs[-1].iter_kept()] if dirs else []
    rows = pl.concat(kept, how="diagonal_relaxed") if kept else pl.DataFrame()
    rej = _concat([_with_stage(_frame(t), d.name) for d in dirs for t in d.iter_rejected()])
    config = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    src = manifest.get("source", {})
    meta = {"name": manifest.get("recipe"), "status": manifest.get("status"), "source": src.get("description"), "source_rows": src.get("rows"), "command": (config or {}).get("command")}
    return Inspection(run, "run", rows, rej, stages, {k: v for k, v in meta.items() if v is not None})


def _frame(table: Any) -> pl.DataFrame:
    import polars as pl

    return pl.from_arrow(table)


# -- the funnel ----------------------------------------------------------------------
def funnel(ins: Inspection) -> pl.DataFrame:
    """Rows per stage: ``index, stage, type, rows_in, kept, rejected, seconds``.

    >>> ins = Inspection(Path("."), "run", None, None, [{"name": "dedup", "type": "exact_dedup", "rows_in": 10, "kept": 7, "rejected": 3, "reasons": {"duplicate_of": 3}, "seconds": 0.1}])
    >>> funnel(ins).select("stage", "rows_in", "kept", "rejected").rows()
    [('dedup', 10, 7, 3)]
    """
    import polars as pl

    recs = [{"index": i, "stage": s.get("name", ""), "type": s.get("type", ""), "rows_in": int(s.get("rows_in", 0)), "kept": int(s.get("kept", 0)), "rejected": int(s.get("rejected", 0)), "seconds": float(s.get("seconds", 0.0))} for i, s in enumerate(ins.stages)]
    schema = {"index": pl.Int64, "stage": pl.String, "type": pl.String, "rows_in": pl.Int64, "kept": pl.Int64, "rejected": pl.Int64, "seconds": pl.Float64}
    return pl.DataFrame(recs, schema=schema)


def rejection_reasons(ins: Inspection) -> pl.DataFrame:
    """Rejected rows per stage and reason (the part before ``:``): ``index, stage, reason, rows``.

    >>> ins = Inspection(Path("."), "run", None, None, [{"name": "clean", "reasons": {"empty": 2}}, {"name": "dedup", "reasons": {"duplicate_of": 3}}])
    >>> rejection_reasons(ins).rows()
    [(0, 'clean', 'empty', 2), (1, 'dedup', 'duplicate_of', 3)]
    """
    import polars as pl

    recs = [{"index": i, "stage": s.get("name", ""), "reason": r, "rows": int(n)} for i, s in enumerate(ins.stages) for r, n in sorted((s.get("reasons") or {}).items(), key=lambda kv: -kv[1])]
    return pl.DataFrame(recs, schema={"index": pl.Int64, "stage": pl.String, "reason": pl.String, "rows": pl.Int64})


def rejected_examples(ins: Inspection, *, n: int = 2, chars: int = 160) -> pl.DataFrame:
    """Rejected rows by stage and reason, with ``n`` examples each.

    Columns: ``stage, reason, rows, examples`` (the row's text, shortened to ``chars``),
    ``full_reasons`` (e.g. ``duplicate_of:<id>``) and ``raw`` (the raw model text, if any).
    """
    import polars as pl

    rej = ins.rejected
    schema = {"stage": pl.String, "reason": pl.String, "rows": pl.UInt32, "examples": pl.List(pl.String), "full_reasons": pl.List(pl.String), "raw": pl.List(pl.String)}
    if rej is None or rej.height == 0:
        return pl.DataFrame(schema=schema)
    order = {s.get("name"): i for i, s in enumerate(ins.stages)}
    text = text_of(rej, chars=chars)
    raw = rej.get_column(RAW).cast(pl.String).str.slice(0, chars) if RAW in rej.columns else pl.Series([None] * rej.height, dtype=pl.String)
    df = pl.DataFrame({"stage": rej.get_column(STAGE), "reason": rej.get_column(REASON).str.extract(r"^([^:]*)", 1), "full": rej.get_column(REASON), "text": text, "raw": raw})
    out = df.group_by("stage", "reason", maintain_order=True).agg(pl.len().alias("rows"), pl.col("text").head(n).alias("examples"), pl.col("full").head(n).alias("full_reasons"), pl.col("raw").head(n).alias("raw"))
    out = out.with_columns(pl.col("stage").replace_strict(order, default=len(order), return_dtype=pl.Int64).alias("_o"))
    return out.sort("_o", "rows", descending=[False, True]).drop("_o").select(list(schema)).cast(schema)


# -- text ----------------------------------------------------------------------
def text_column(df: pl.DataFrame) -> str | None:
    """The column that best stands for a row as text (instruction, prompt, messages, ...)."""
    return next((c for c in TEXT_COLUMNS if c in df.columns), None)


def as_text(s: pl.Series, *, chars: int | None = None) -> pl.Series:
    """A string column, or a message-list column as its contents joined by `` / ``.

    >>> import polars as pl
    >>> as_text(pl.Series([[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]])).to_list()
    ['Hi / Hello']
    """
    import polars as pl

    dt = s.dtype
    if isinstance(dt, pl.List) and isinstance(dt.inner, pl.Struct) and "content" in [f.name for f in dt.inner.fields]:
        s = s.list.eval(pl.element().struct.field("content")).list.join(" / ")
    elif dt != pl.String:
        s = s.cast(pl.String, strict=False) if dt.is_numeric() else pl.Series(s.name, [None if v is None else str(v) for v in s.to_list()], dtype=pl.String)
    s = s.fill_null("")
    return s.str.slice(0, chars) if chars else s


def text_of(df: pl.DataFrame, *, chars: int | None = None) -> pl.Series:
    """Each row's text (see :func:`text_column`), or empty strings when there is none."""
    import polars as pl

    col = text_column(df)
    return as_text(df.get_column(col), chars=chars).alias("text") if col else pl.Series("text", [""] * df.height, dtype=pl.String)


# -- per-column summaries and distributions ------------------------------------------
def column_summary(df: pl.DataFrame) -> pl.DataFrame:
    """One row per column: ``column, dtype, nulls, unique, mean, min, max, mean_chars, example``.

    >>> import polars as pl
    >>> column_summary(pl.DataFrame({"a": [1, 2, None], "b": ["x", "yy", "x"]})).select("column", "nulls", "unique", "mean", "mean_chars").rows()
    [('a', 1, 3, 1.5, None), ('b', 0, 2, None, 1.3333)]
    """
    import polars as pl

    recs = []
    for col in df.columns:
        s = df.get_column(col)
        dt = s.dtype
        rec: dict[str, Any] = {"column": col, "dtype": str(dt), "nulls": s.null_count(), "unique": None, "mean": None, "min": None, "max": None, "mean_chars": None}
        if not isinstance(dt, (pl.List, pl.Struct, pl.Array, pl.Object)):
            rec["unique"] = s.n_unique()
        if dt.is_numeric() and s.drop_nulls().len():
            v = s.drop_nulls().cast(pl.Float64)
            rec.update(mean=round(float(v.mean()), 4), min=float(v.min()), max=float(v.max()))
        elif dt == pl.String and s.drop_nulls().len():
            rec["mean_chars"] = round(float(s.drop_nulls().str.len_chars().mean()), 4)
        first = s.drop_nulls().head(1).to_list()
        rec["example"] = _short(first[0] if first else None, 60)
        recs.append(rec)
    schema = {"column": pl.String, "dtype": pl.String, "nulls": pl.Int64, "unique": pl.Int64, "mean": pl.Float64, "min": pl.Float64, "max": pl.Float64, "mean_chars": pl.Float64, "example": pl.String}
    return pl.DataFrame(recs, schema=schema)


def _short(v: Any, n: int) -> str | None:
    if v is None:
        return None
    s = v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
    return s if len(s) <= n else s[: n - 3] + "..."


def categorical_columns(df: pl.DataFrame, *, max_values: int = 12) -> list[str]:
    """Tag-like string columns: the known tag names, and any string column with at most
    ``max_values`` distinct values that repeat (fewer distinct values than half the rows)."""
    import polars as pl

    out = [c for c in CATEGORICAL if c in df.columns and df.schema[c] in (pl.String, pl.Boolean, pl.Categorical)]
    for c in df.columns:
        if c in out or c == "id" or c.endswith(("_id", "_generator", "_error", "_raw")) or df.schema[c] not in (pl.String, pl.Boolean):
            continue
        u = df.get_column(c).n_unique()
        if 1 < u <= max_values and u <= df.height / 2:
            out.append(c)
    return out


def value_counts(df: pl.DataFrame, column: str) -> pl.DataFrame:
    """``value, rows, share`` of one column, most frequent first (nulls as ``(null)``).

    >>> import polars as pl
    >>> value_counts(pl.DataFrame({"difficulty": ["easy", "hard", "easy", None]}), "difficulty").rows()
    [('easy', 2, 0.5), ('(null)', 1, 0.25), ('hard', 1, 0.25)]
    """
    import polars as pl

    _need(df, column)
    s = df.get_column(column).cast(pl.String).fill_null("(null)")
    vc = s.value_counts(sort=True, name="rows").rename({column: "value"})
    vc = vc.with_columns(pl.col("rows").cast(pl.Int64), (pl.col("rows") / max(1, df.height)).round(4).alias("share"))
    return vc.sort(["rows", "value"], descending=[True, False])


def numeric_columns(df: pl.DataFrame) -> list[str]:
    """Score-like columns: numeric ones and lists of numbers (flattened), minus ids and counters."""
    import polars as pl

    out = []
    for c, dt in df.schema.items():
        if c in NOT_SCORES or c == "id" or c.endswith(("_index", "_seed", "_id")):
            continue
        inner = dt.inner if isinstance(dt, pl.List) else dt
        if inner.is_numeric() and df.get_column(c).drop_nulls().len():
            out.append(c)
    return out


def numeric_values(df: pl.DataFrame, column: str) -> pl.Series:
    """The non-null values of a numeric column as floats; a list column is flattened."""
    import polars as pl

    _need(df, column)
    s = df.get_column(column)
    if isinstance(s.dtype, pl.List):
        s = s.explode()
    s = s.drop_nulls().cast(pl.Float64)
    return s.filter(s.is_finite())


def numeric_summary(df: pl.DataFrame) -> pl.DataFrame:
    """``column, n, mean, min, p25, median, p75, max`` of every score-like column
    (lengths, rewards, judge scores, deita scores, CHES, constraint satisfaction, ...).

    >>> import polars as pl
    >>> numeric_summary(pl.DataFrame({"score": [1.0, 2.0, 3.0], "ratings": [[1.0], [5.0], []]})).select("column", "n", "mean", "max").rows()
    [('score', 3, 2.0, 3.0), ('ratings', 2, 3.0, 5.0)]
    """
    import polars as pl

    recs = []
    for c in numeric_columns(df):
        v = numeric_values(df, c)
        if not v.len():
            continue
        q = [float(v.quantile(x, "nearest")) for x in (0.0, 0.25, 0.5, 0.75, 1.0)]
        recs.append({"column": c, "n": v.len(), "mean": round(float(v.mean()), 4), "min": q[0], "p25": q[1], "median": q[2], "p75": q[3], "max": q[4]})
    schema = {"column": pl.String, "n": pl.Int64, "mean": pl.Float64, "min": pl.Float64, "p25": pl.Float64, "median": pl.Float64, "p75": pl.Float64, "max": pl.Float64}
    return pl.DataFrame(recs, schema=schema)


def constraint_pass_rates(df: pl.DataFrame) -> pl.DataFrame:
    """Per constraint type (IFEval/IFBench id): ``instruction_id, checks, passed, pass_rate``.

    Reads ``instruction_id_list`` with ``follow_instruction_list`` (one verdict list per row,
    or one per sampled response). Empty when the columns are absent.

    >>> import polars as pl
    >>> df = pl.DataFrame({"instruction_id_list": [["punctuation:no_comma", "keywords:existence"]], "follow_instruction_list": [[[True, False], [True, True]]]})
    >>> constraint_pass_rates(df).rows()
    [('keywords:existence', 2, 1, 0.5), ('punctuation:no_comma', 2, 2, 1.0)]
    """
    import polars as pl

    schema = {"instruction_id": pl.String, "checks": pl.Int64, "passed": pl.Int64, "pass_rate": pl.Float64}
    if not {"instruction_id_list", "follow_instruction_list"} <= set(df.columns):
        return pl.DataFrame(schema=schema)
    sub = df.select("instruction_id_list", "follow_instruction_list").drop_nulls()
    dt = sub.schema["follow_instruction_list"]
    if isinstance(dt, pl.List) and isinstance(dt.inner, pl.List):  # one verdict list per response
        sub = sub.explode("follow_instruction_list").drop_nulls()
    sub = sub.filter(pl.col("instruction_id_list").list.len() == pl.col("follow_instruction_list").list.len())
    long = sub.explode("instruction_id_list", "follow_instruction_list").drop_nulls()
    out = long.group_by("instruction_id_list").agg(pl.len().cast(pl.Int64).alias("checks"), pl.col("follow_instruction_list").sum().cast(pl.Int64).alias("passed"))
    out = out.rename({"instruction_id_list": "instruction_id"}).with_columns((pl.col("passed") / pl.col("checks")).round(4).alias("pass_rate"))
    return out.sort("instruction_id").select(list(schema)).cast(schema)


def judge_ratings(df: pl.DataFrame) -> pl.DataFrame:
    """Judge ratings per aspect and model: ``aspect, model, n, mean``.

    From UltraFeedback's per-completion lists (``rating_<aspect>``, ``overall_score``,
    ``fine-grained_score``) aligned with ``completions[].model``; else from the
    ``<score>__<model>`` means of ``uf_rating_stats``; else from the pair's
    ``score_chosen``/``score_rejected``. Empty when there are no ratings.

    >>> import polars as pl
    >>> df = pl.DataFrame({"completions": [[{"model": "a"}, {"model": "b"}]], "rating_honesty": [[4.0, 2.0]]})
    >>> judge_ratings(df).rows()
    [('honesty', 'a', 1, 4.0), ('honesty', 'b', 1, 2.0)]
    """
    import polars as pl

    schema = {"aspect": pl.String, "model": pl.String, "n": pl.Int64, "mean": pl.Float64}
    lists = [c for c in df.columns if (c.startswith("rating_") or c in ("overall_score", "fine-grained_score")) and isinstance(df.schema[c], pl.List) and df.schema[c].inner.is_numeric()]
    frames = []
    has_models = "completions" in df.columns and isinstance(df.schema["completions"], pl.List) and isinstance(df.schema["completions"].inner, pl.Struct) and "model" in [f.name for f in df.schema["completions"].inner.fields]
    for c in lists:
        aspect = c.removeprefix("rating_")
        if has_models:
            sub = df.select(pl.col("completions").list.eval(pl.element().struct.field("model")).alias("model"), pl.col(c).alias("v")).drop_nulls()
            sub = sub.filter(pl.col("model").list.len() == pl.col("v").list.len()).explode("model", "v")
        else:
            sub = df.select(pl.col(c).alias("v")).explode("v").with_columns(pl.lit("(all)").alias("model"))
        frames.append(sub.drop_nulls().filter(pl.col("v").is_finite()).with_columns(pl.lit(aspect).alias("aspect")))
    if not frames:
        means = [c for c in df.columns if "__" in c and df.schema[c].is_numeric()]
        for c in means:
            score, model = c.split("__", 1)
            frames.append(df.select(pl.col(c).alias("v")).drop_nulls().with_columns(pl.lit(score.removeprefix("rating_")).alias("aspect"), pl.lit(model).alias("model")))
    if not frames and {"score_chosen", "score_rejected"} <= set(df.columns):
        for c in ("score_chosen", "score_rejected"):
            model_col = c.replace("score_", "") + "_model"
            model = pl.col(model_col).fill_null("(all)") if model_col in df.columns else pl.lit("(all)")
            frames.append(df.select(pl.col(c).cast(pl.Float64).alias("v"), model.alias("model")).drop_nulls().with_columns(pl.lit(c.removeprefix("score_")).alias("aspect")))
    if not frames:
        return pl.DataFrame(schema=schema)
    long = pl.concat([f.select("aspect", "model", pl.col("v").cast(pl.Float64)) for f in frames])
    out = long.group_by("aspect", "model", maintain_order=True).agg(pl.len().cast(pl.Int64).alias("n"), pl.col("v").mean().round(4).alias("mean"))
    return out.sort("aspect", "model").select(list(schema)).cast(schema)


# -- pairs, duplicates, lineage ---------------------------------------------------------
def pairs(df: pl.DataFrame, *, n: int = 5, chars: int = 400) -> pl.DataFrame:
    """Chosen next to rejected: ``id, prompt, chosen, rejected`` and, where present,
    ``score_chosen, score_rejected, margin, chosen_model, rejected_model``.

    >>> import polars as pl
    >>> df = pl.DataFrame({"prompt": ["2+2?"], "chosen": ["4"], "rejected": ["5"], "score_chosen": [9.0], "score_rejected": [2.0]})
    >>> pairs(df).select("prompt", "chosen", "rejected", "margin").rows()
    [('2+2?', '4', '5', 7.0)]
    """
    import polars as pl

    _need(df, "chosen", "rejected")
    head = df.head(n)
    cols = {"id": head.get_column("id").cast(pl.String) if "id" in head.columns else pl.Series([str(i) for i in range(head.height)])}
    cols["prompt"] = as_text(head.get_column("prompt"), chars=chars) if "prompt" in head.columns else pl.Series([""] * head.height)
    cols["chosen"] = as_text(head.get_column("chosen"), chars=chars)
    cols["rejected"] = as_text(head.get_column("rejected"), chars=chars)
    out = pl.DataFrame(cols)
    for c in ("score_chosen", "score_rejected", "chosen_model", "rejected_model"):
        if c in head.columns:
            out = out.with_columns(head.get_column(c).alias(c))
    if {"score_chosen", "score_rejected"} <= set(out.columns):
        out = out.with_columns((pl.col("score_chosen").cast(pl.Float64) - pl.col("score_rejected").cast(pl.Float64)).round(4).alias("margin"))
    return out


def duplicate_clusters(ins: Inspection, *, chars: int = 160, limit: int = 20) -> pl.DataFrame:
    """Near-duplicate clusters: ``cluster, id, role, stage, text`` (and ``distance``).

    Two sources, whichever the run has: rejected rows whose reason is
    ``duplicate_of:<id>`` (exact, MinHash and embedding dedup) form a cluster with the row
    they copy (role ``kept`` or ``duplicate``); rows sharing a ``min_similar_uuid``
    (Magpie's kNN tags) form one too (role ``neighbour``). The ``limit`` largest clusters.
    """
    import polars as pl

    schema = {"cluster": pl.String, "id": pl.String, "role": pl.String, "stage": pl.String, "text": pl.String, "distance": pl.Float64}
    frames = []
    rows, rej = ins.rows, ins.rejected
    pool_parts = [f.select(pl.col("id").cast(pl.String), text_of(f, chars=chars)) for f in (rows, rej) if f is not None and f.height and "id" in f.columns]
    pool = pl.concat(pool_parts).unique("id", keep="first") if pool_parts else pl.DataFrame(schema={"id": pl.String, "text": pl.String})
    if rej is not None and rej.height and "id" in rej.columns:
        dup = rej.filter(pl.col(REASON).str.starts_with(DUPLICATE))
        if dup.height:
            members = dup.select(pl.col(REASON).str.slice(len(DUPLICATE)).alias("cluster"), pl.col("id").cast(pl.String), pl.lit("duplicate").alias("role"), pl.col(STAGE).alias("stage"), text_of(dup, chars=chars))
            keepers = members.select("cluster", pl.col("cluster").alias("id"), pl.lit("kept").alias("role"), "stage").unique("cluster", keep="first")
            keepers = keepers.join(pool, on="id", how="left").with_columns(pl.col("text").fill_null(""))
            frames.append(pl.concat([keepers, members]).with_columns(pl.lit(None, dtype=pl.Float64).alias("distance")))
    if rows is not None and "min_similar_uuid" in rows.columns and "id" in rows.columns:
        nb = rows.filter(pl.col("min_similar_uuid").is_not_null())
        nb = nb.filter(pl.col("min_similar_uuid").count().over("min_similar_uuid") > 1)
        if nb.height:
            dist = nb.get_column("min_neighbor_distance").cast(pl.Float64) if "min_neighbor_distance" in nb.columns else pl.Series([None] * nb.height, dtype=pl.Float64)
            frames.append(pl.DataFrame({"cluster": nb.get_column("min_similar_uuid").cast(pl.String), "id": nb.get_column("id").cast(pl.String), "role": "neighbour", "stage": "min_similar_uuid", "text": text_of(nb, chars=chars), "distance": dist}))
    if not frames:
        return pl.DataFrame(schema=schema)
    out = pl.concat([f.select(list(schema)).cast(schema) for f in frames])
    out = out.with_columns(pl.len().over("cluster").alias("_n"), (pl.col("role") != "kept").cast(pl.Int8).alias("_r"))
    top = out.select("cluster", "_n").unique().sort(["_n", "cluster"], descending=[True, False]).head(limit).get_column("cluster")
    return out.filter(pl.col("cluster").is_in(top.implode())).sort(["_n", "cluster", "_r", "id"], descending=[True, False, False, False]).drop("_n", "_r")


def lineage(df: pl.DataFrame, row_id: str | None = None) -> pl.DataFrame:
    """A CodecLM row's way through the rounds: ``round, instruction, action, score_strong,
    score_target, gap, outcome`` (the row ``row_id``, or the first row with a lineage).

    Raises
    ------
    SchemaError
        When there is no ``lineage`` column, or no row ``row_id``.
    """
    import polars as pl

    _need(df, "lineage")
    sub = df.filter(pl.col("id").cast(pl.String) == row_id) if row_id is not None else df.filter(pl.col("lineage").list.len() > 0).head(1)
    if sub.height == 0:
        msg = f"no row with id {row_id!r}" if row_id is not None else "no row has a lineage"
        raise SchemaError(msg, column="lineage")
    return sub.head(1).select(pl.col("lineage").explode()).unnest("lineage")


def sample_rows(df: pl.DataFrame, *, n: int = 5, chars: int = 120, max_columns: int = 8) -> pl.DataFrame:
    """The first ``n`` rows with text shortened and list/struct columns as short JSON: what a
    card or report shows as a sample (``embedding``-like long vectors are left out)."""
    import polars as pl

    head = df.head(n)
    cols = {}
    for c in head.columns:
        if len(cols) >= max_columns:
            break
        dt = head.schema[c]
        if isinstance(dt, (pl.List, pl.Array)) and dt.inner.is_numeric() and c in ("embedding",):
            continue
        cols[c] = as_text(head.get_column(c), chars=chars) if isinstance(dt, pl.List) and isinstance(dt.inner, pl.Struct) else pl.Series(c, [_short(v, chars) for v in head.get_column(c).to_list()], dtype=pl.String)
    return pl.DataFrame(cols)


def _need(df: pl.DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        msg = f"column(s) {', '.join(repr(c) for c in missing)} not in the data (columns: {', '.join(df.columns)})"
        raise SchemaError(msg, column=missing[0])
