"""Judge agreement: how often an UltraFeedback-style judge prefers the output humans preferred,
and how often its preference survives swapping the two outputs (position consistency).

Sets (``shared/data/judge_agreement``, see its README): LLMBar Natural and the four
Adversarial subsets (Neighbor, GPTInst, GPTOut, Manual), LLMBar's processed MT-Bench expert
judgments (200 majority-vote pairs, ties removed), and PandaLM's test set (majority of three
annotators; 0 = tie is a class of its own).

Protocol, as LLMBar's statistics: every pair is judged in both orders. Per order the judge
rates both outputs on the chosen aspects in one call per aspect (the UltraFeedback prompt
with two texts, in list order) and prefers the higher mean rating (``fine-grained_score``);
equal means tie. ``acc_original`` / ``acc_swapped`` are per-order accuracies,
``correct_average`` their mean, ``correct_both`` the share right in both orders, and
``consistency`` the share with the same decision in both orders (LLMBar's ``equal``). A pair
whose reply did not parse in an order counts as wrong there and as inconsistent.

The reference figures printed beside ours are GPT-4's from LLMBar's statistics (the
``Vanilla_NoRules`` prompt, both orders: MT-Bench 81.0%, Natural 93.5%, Neighbor 64.2%) and
gpt-3.5-turbo's PandaLM results, recomputed from the file the PandaLM authors ship.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import InputError

SETS: dict[str, str] = {
    "llmbar_natural": "llmbar/LLMBar_Natural.json",
    "llmbar_neighbor": "llmbar/LLMBar_Adversarial_Neighbor.json",
    "llmbar_gptinst": "llmbar/LLMBar_Adversarial_GPTInst.json",
    "llmbar_gptout": "llmbar/LLMBar_Adversarial_GPTOut.json",
    "llmbar_manual": "llmbar/LLMBar_Adversarial_Manual.json",
    "mt_bench": "llmbar/Processed_MT-Bench.json",
    "pandalm": "pandalm/testset-v1.json",
}
GPT4_KEYS = {
    "llmbar_natural": "LLMBar/Natural",
    "llmbar_neighbor": "LLMBar/Adversarial/Neighbor",
    "llmbar_gptinst": "LLMBar/Adversarial/GPTInst",
    "llmbar_gptout": "LLMBar/Adversarial/GPTOut",
    "llmbar_manual": "LLMBar/Adversarial/Manual",
    "mt_bench": "Processed/MT-Bench",
}
GPT4_PROMPT = "Vanilla_NoRules"
METRICS = ("acc_original", "acc_swapped", "correct_average", "correct_both", "consistency")


@dataclass(frozen=True)
class Pair:
    """One labelled comparison: ``label`` 1 or 2 (the better output) or 0 (tie, PandaLM)."""

    instruction: str
    output_1: str
    output_2: str
    label: int


def default_data_dir() -> Path:
    """``$ALIGNCRAFT_SHARED_DATA/judge_agreement``, else ``../shared/data/judge_agreement`` beside the repo."""
    root = os.environ.get("ALIGNCRAFT_SHARED_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return base / "judge_agreement"


def majority(votes: Sequence[int]) -> int:
    """The majority vote of annotators; 0 (tie) when no label has a strict majority.

    >>> majority([2, 2, 1]), majority([1, 0, 2]), majority([0, 0, 1])
    (2, 0, 0)
    """
    values, counts = np.unique(np.asarray(votes), return_counts=True)
    best = counts.max()
    return int(values[counts.argmax()]) if best * 2 > len(votes) else 0


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputError("judge-agreement file not found", path=str(path), hint="pass --data pointing at shared/data/judge_agreement")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg}", path=str(path), line=exc.lineno) from None


def load_set(root: Path, name: str) -> list[Pair]:
    """Read one set into :class:`Pair` records (PandaLM's input joined to its instruction)."""
    path = root / SETS[name]
    rows = _read_json(path)
    out = []
    for i, r in enumerate(rows, start=1):
        try:
            if name == "pandalm":
                ins = r["instruction"] + (f"\n\n{r['input']}" if r.get("input") else "")
                out.append(Pair(ins, r["response1"], r["response2"], majority([r["annotator1"], r["annotator2"], r["annotator3"]])))
            else:
                out.append(Pair(r["input"], r["output_1"], r["output_2"], int(r["label"])))
        except KeyError as exc:
            raise InputError(f"record {i} lacks field {exc}", path=str(path)) from None
    return out


def sample_pairs(pairs: list[Pair], k: int | None, seed: int) -> list[int]:
    """Indices of a seeded random sample of ``k`` pairs (all, in order, when ``k`` is None)."""
    if k is None or k >= len(pairs):
        return list(range(len(pairs)))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(len(pairs), size=k, replace=False))


def decision(score_1: float | None, score_2: float | None) -> int | None:
    """1 or 2 for the higher score, 0 for a tie, None when either is missing.

    >>> decision(4.0, 3.5), decision(2.0, 2.0), decision(None, 1.0)
    (1, 0, None)
    """
    if score_1 is None or score_2 is None or np.isnan(score_1) or np.isnan(score_2):
        return None
    return 1 if score_1 > score_2 else 2 if score_2 > score_1 else 0


def agreement_metrics(labels: Sequence[int], original: Sequence[int | None], swapped: Sequence[int | None]) -> dict[str, float]:
    """LLMBar-style statistics from per-order decisions (``swapped`` already mapped back to
    the original numbering).

    >>> m = agreement_metrics([1, 2, 1, 2], [1, 2, 2, None], [1, 1, 2, 2])
    >>> m["acc_original"], m["acc_swapped"], m["correct_both"], m["consistency"], m["unparsed"]
    (0.5, 0.5, 0.25, 0.5, 0.125)
    """
    y = np.asarray(labels)
    a = np.array([-1 if d is None else d for d in original])
    b = np.array([-1 if d is None else d for d in swapped])
    ok_a, ok_b = a == y, b == y
    return {
        "n": len(y),
        "acc_original": float(ok_a.mean()) if len(y) else float("nan"),
        "acc_swapped": float(ok_b.mean()) if len(y) else float("nan"),
        "correct_average": float((ok_a.mean() + ok_b.mean()) / 2) if len(y) else float("nan"),
        "correct_both": float((ok_a & ok_b).mean()) if len(y) else float("nan"),
        "consistency": float(((a == b) & (a >= 0)).mean()) if len(y) else float("nan"),
        "unparsed": float(((a < 0).sum() + (b < 0).sum()) / (2 * len(y))) if len(y) else float("nan"),
    }


def _percent(text: str) -> float:
    """``'93.5%'`` or ``'92 / 100 = 92.0%'`` -> 0.935 / 0.92."""
    return float(text.rsplit("=", 1)[-1].strip().rstrip("%")) / 100.0


def reference_figures(root: Path) -> dict[str, dict[str, Any]]:
    """Published figures per set: GPT-4 (LLMBar, Vanilla_NoRules) and gpt-3.5-turbo (PandaLM)."""
    stats = _read_json(root / "llmbar" / "gpt4_judge_reference_statistics.json")["results"]
    out: dict[str, dict[str, Any]] = {}
    for name, key in GPT4_KEYS.items():
        s = stats.get(key, {}).get(GPT4_PROMPT)
        if s:
            out[name] = {"judge": f"GPT-4 ({GPT4_PROMPT}, LLMBar)", "correct_average": _percent(s["correct_average"]), "correct_both": _percent(s["correct_both"]), "consistency": _percent(s["equal"])}
    gpt35 = root / "pandalm" / "gpt-3.5-turbo-testset-v1.json"
    if gpt35.is_file():
        human = {i: p.label for i, p in enumerate(load_set(root, "pandalm"))}
        res = _read_json(gpt35)
        as_label = {"1": 1, "2": 2, "Tie": 0}
        hits = [as_label.get(str(r["gpt_result"]), -1) == human[int(r["idx"])] for r in res]
        out["pandalm"] = {"judge": "gpt-3.5-turbo (PandaLM, one order)", "correct_average": float(np.mean(hits))}
    return out


def judge_table(pairs: list[Pair], key: str) -> Any:
    """The two rows per pair (original and swapped order) the rating stage reads."""
    import pyarrow as pa

    from synth.judge.ultrafeedback.pool import COMPLETIONS

    def comp(text: str, model: str) -> dict[str, str]:
        return {"model": model, "principle": "none", "system_prompt": "", "text": text}

    rows = []
    for i, p in enumerate(pairs):
        rows.append({"id": f"{key}:{i}:a", "instruction": p.instruction, "completions": [comp(p.output_1, "output_1"), comp(p.output_2, "output_2")]})
        rows.append({"id": f"{key}:{i}:b", "instruction": p.instruction, "completions": [comp(p.output_2, "output_2"), comp(p.output_1, "output_1")]})
    return pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.string()), ("instruction", pa.string()), ("completions", COMPLETIONS)]))


def decisions(kept: Any, n: int, key: str) -> tuple[list[int | None], list[int | None]]:
    """Per-pair decisions in each order from the rating stage's kept rows (swapped mapped back)."""
    original: list[int | None] = [None] * n
    swapped: list[int | None] = [None] * n
    for rid, fg in zip(kept.column("id").to_pylist(), kept.column("fine-grained_score").to_pylist()):
        _, i, side = rid.rsplit(":", 2)
        d = decision(*(fg or [None, None])[:2])
        if side == "a":
            original[int(i)] = d
        else:
            swapped[int(i)] = {1: 2, 2: 1}.get(d, d) if d is not None else None
    return original, swapped


def evaluate(stage: Any, root: Path, sets: Sequence[str], *, sample: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Judge every selected set with ``stage`` (a :class:`UFRate` with ``shuffle: false``);
    all pairs of all sets, in both orders, go to the engine as one batch."""
    import pyarrow as pa

    chosen: dict[str, list[Pair]] = {}
    for name in sets:
        pairs = load_set(root, name)
        chosen[name] = [pairs[i] for i in sample_pairs(pairs, sample, seed)]
    table = pa.concat_tables([judge_table(ps, name) for name, ps in chosen.items()])
    kept, rejected = stage.process(table)
    results: dict[str, Any] = {}
    reasons = rejected.column("reject_reason").to_pylist() if rejected.num_rows else []
    for name, ps in chosen.items():
        sub = kept.filter(pa.compute.starts_with(kept.column("id"), f"{name}:"))
        original, swapped = decisions(sub, len(ps), name)
        results[name] = {**agreement_metrics([p.label for p in ps], original, swapped), "ties_in_labels": sum(p.label == 0 for p in ps)}
    return {"sets": results, "rejected_reasons": {r: reasons.count(r) for r in sorted(set(reasons))}}


def format_table(results: dict[str, Any], reference: dict[str, dict[str, Any]], judge: str) -> str:
    """A plain-text table: our figures per set, the published reference figures beside them."""
    head = f"{'set':<16} {'n':>4} {'acc(orig)':>9} {'acc(swap)':>9} {'acc(avg)':>8} {'both':>6} {'consist':>7} {'unparsed':>8} | {'ref avg':>7} {'ref both':>8} {'ref cons':>8}  reference judge"
    lines = [f"judge: {judge}", head, "-" * len(head)]

    def pct(x: Any) -> str:
        return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}"

    for name, m in results["sets"].items():
        ref = reference.get(name, {})
        lines.append(f"{name:<16} {m['n']:>4} {pct(m['acc_original']):>9} {pct(m['acc_swapped']):>9} {pct(m['correct_average']):>8} {pct(m['correct_both']):>6} {pct(m['consistency']):>7} {pct(m['unparsed']):>8} | "
                     f"{pct(ref.get('correct_average')):>7} {pct(ref.get('correct_both')):>8} {pct(ref.get('consistency')):>8}  {ref.get('judge', '')}")
    return "\n".join(lines)
