"""Capacity Recovery Ratio (CodecLM's evaluation metric, Wang et al. 2024 §5.1).

CRR = (wins + ties of model A against model B) / total: how much of B's capacity (the
strong model) A (the tuned target) recovers. Each prompt is judged twice with Vicuna's
pairwise prompt, A first and B first; a side wins only if it scores higher in both orders,
anything else is a tie (position bias cancels). A reply that does not parse in either order
leaves the prompt out of the total and is counted as ``unparsed``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pipelines.errors import InputError, ParseError
from synth.codeclm.judge import SCORE_REGEX
from synth.codeclm.parse import parse_score_pair
from synth.codeclm.prompts import judge_chat

Verdict = Literal["a", "b", "tie"]


def pair_verdict(a_first: tuple[float, float], b_first: tuple[float, float]) -> Verdict:
    """``a`` only if A scores higher in both orders, ``b`` likewise, else ``tie``.

    ``a_first`` = (A's score, B's score) with A shown first; ``b_first`` = (B's, A's).

    >>> pair_verdict((8, 6), (5, 7)), pair_verdict((8, 6), (7, 6)), pair_verdict((3, 9), (9, 2))
    ('a', 'tie', 'b')
    """
    a_wins = a_first[0] > a_first[1] and b_first[1] > b_first[0]
    b_wins = a_first[0] < a_first[1] and b_first[1] < b_first[0]
    return "a" if a_wins else "b" if b_wins else "tie"


def crr(verdicts: Sequence[Verdict]) -> float:
    """(wins of A + ties) / total.

    >>> crr(["a", "tie", "b", "b"])
    0.5
    """
    if not verdicts:
        return 0.0
    return sum(v != "b" for v in verdicts) / len(verdicts)


def read_answers(path: str | Path) -> list[tuple[str, str]]:
    """(instruction, response) pairs of a JSONL/JSON/CSV/parquet file, with the usual SFT
    spellings accepted (``prompt``/``question`` for the instruction, ``output``/``answer``
    for the response, or a ``messages`` list)."""
    from pipelines.inputs import read_input
    from pipelines.source import maybe_sft_columns

    table = maybe_sft_columns(read_input(path))
    for col in ("instruction", "response"):
        if col not in table.column_names:
            raise InputError(f"no '{col}' column (has: {', '.join(table.column_names)})", path=str(path), column=col, hint="give instruction/response, prompt/output or messages")
    ins, res = table.column("instruction").to_pylist(), table.column("response").to_pylist()
    for i, (q, r) in enumerate(zip(ins, res)):
        if not q or r is None:
            col = "instruction" if not q else "response"
            raise InputError(f"empty {col}", path=str(path), row=i + 1, column=col)
    return list(zip(ins, res))


def match_answers(a: Sequence[tuple[str, str]], b: Sequence[tuple[str, str]], *, a_path: str = "A", b_path: str = "B") -> list[tuple[str, str, str]]:
    """(prompt, A's answer, B's answer) for every prompt of A, matched by exact prompt text.

    >>> match_answers([("q1", "x")], [("q0", "z"), ("q1", "y")])
    [('q1', 'x', 'y')]
    """
    by_prompt = {q: r for q, r in b}
    out = []
    for i, (q, r) in enumerate(a):
        if q not in by_prompt:
            raise InputError(f"prompt not found in {b_path}: {q[:60]!r}", path=a_path, row=i + 1, column="instruction", hint="both files must answer the same prompts")
        out.append((q, r, by_prompt[q]))
    return out


def judge_crr(llm: Any, triples: Sequence[tuple[str, str, str]], *, sampling: dict[str, Any] | None = None, structured: bool = False) -> dict[str, Any]:
    """Judge every (prompt, A, B) in both orders in one engine call; counts, CRR and rows."""
    sampling = dict(sampling or {"temperature": 0.0, "max_tokens": 16})
    if structured:
        sampling["structured_outputs"] = {"regex": SCORE_REGEX}
    chats = [judge_chat(q, a, b) for q, a, b in triples] + [judge_chat(q, b, a) for q, a, b in triples]
    outs = llm.chat(chats, sampling) if chats else []
    n = len(triples)
    rows, verdicts = [], []
    for (q, _, _), x, y in zip(triples, outs[:n], outs[n:]):
        verdict: str
        try:
            if x.error or y.error:
                raise ParseError(x.error or y.error or "")
            verdict = pair_verdict(parse_score_pair(x.text), parse_score_pair(y.text))
            verdicts.append(verdict)
        except ParseError:
            verdict = "unparsed"
        rows.append({"instruction": q, "a_first": x.text, "b_first": y.text, "verdict": verdict})
    counts = {k: sum(v == k for v in verdicts) for k in ("a", "b", "tie")}
    return {"crr": crr(verdicts), "wins": counts["a"], "losses": counts["b"], "ties": counts["tie"], "judged": len(verdicts), "unparsed": n - len(verdicts), "rows": rows}
