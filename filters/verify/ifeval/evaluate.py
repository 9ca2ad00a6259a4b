"""IFEval evaluation over files: match responses to prompts, verify, summarize.

The library behind ``aligncraft verify``; it mirrors the reference's ``evaluation_lib``
(results per prompt, then prompt-level and instruction-level accuracy, per category and
per instruction id).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filters.verify.ifeval.records import (
    PromptRecord,
    ResponseRecord,
    read_prompts,
    read_responses,
)
from filters.verify.ifeval.verifier import Mode, verify
from pipelines.errors import InputError

__all__ = ["Summary", "evaluate", "format_report", "read_prompts", "read_responses", "summarize"]


def evaluate(
    prompts: Sequence[PromptRecord],
    responses: Sequence[ResponseRecord],
    *,
    mode: Mode = "strict",
    prompts_path: str | Path | None = None,
    responses_path: str | Path | None = None,
) -> list[dict[str, Any]]:
    """One result per prompt, in prompt order, as the reference's ``OutputExample``.

    Every response must match a prompt by exact text and every prompt must have a
    response; the paths only make the ``InputError`` name the file.
    """
    by_prompt = {r.prompt: r for r in responses}
    known = {p.prompt for p in prompts}
    for r in responses:
        if r.prompt not in known:
            msg = f"no prompt in {prompts_path or 'the prompts file'} has this prompt text: {r.prompt[:60]!r}"
            raise InputError(msg, path=str(responses_path) if responses_path else None, line=r.line, column="prompt")
    results = []
    for p in prompts:
        r = by_prompt.get(p.prompt)
        if r is None:
            msg = f"no response in {responses_path or 'the responses file'} for this prompt: {p.prompt[:60]!r}"
            raise InputError(msg, path=str(prompts_path) if prompts_path else None, line=p.line, column="prompt")
        follow = verify(r.response, p.prompt, p.instruction_id_list, p.kwargs, mode)
        results.append(
            {
                "follow_all_instructions": all(follow),
                "follow_instruction_list": follow,
                "instruction_id_list": list(p.instruction_id_list),
                "prompt": p.prompt,
                "response": r.response,
            }
        )
    return results


@dataclass
class Summary:
    """Followed/total counts at prompt and instruction level, per category and per id."""

    prompts_followed: int = 0
    prompts: int = 0
    instructions_followed: int = 0
    instructions: int = 0
    by_category: Counter[str] = field(default_factory=Counter)
    by_category_total: Counter[str] = field(default_factory=Counter)
    by_id: Counter[str] = field(default_factory=Counter)
    by_id_total: Counter[str] = field(default_factory=Counter)

    @property
    def prompt_accuracy(self) -> float:
        return self.prompts_followed / self.prompts if self.prompts else 0.0

    @property
    def instruction_accuracy(self) -> float:
        return self.instructions_followed / self.instructions if self.instructions else 0.0


def summarize(results: Sequence[dict[str, Any]]) -> Summary:
    """Count what the reference's ``print_report`` prints."""
    s = Summary()
    for r in results:
        follow = r["follow_instruction_list"]
        s.prompts += 1
        s.prompts_followed += all(follow)
        s.instructions += len(follow)
        s.instructions_followed += sum(follow)
        for iid, ok in zip(r["instruction_id_list"], follow):
            category = iid.split(":")[0]
            s.by_category_total[category] += 1
            s.by_category[category] += ok
            s.by_id_total[iid] += 1
            s.by_id[iid] += ok
    return s


def format_report(summary: Summary, *, mode: str = "strict") -> str:
    """Accuracies as a small text table (for the terminal)."""
    s = summary
    lines = [
        f"mode: {mode}",
        f"prompt-level accuracy:      {s.prompts_followed}/{s.prompts} = {s.prompt_accuracy:.4f}",
        f"instruction-level accuracy: {s.instructions_followed}/{s.instructions} = {s.instruction_accuracy:.4f}",
        "",
    ]
    width = max((len(k) for k in s.by_id_total), default=10)
    for title, followed, total in (("category", s.by_category, s.by_category_total), ("instruction", s.by_id, s.by_id_total)):
        lines.append(f"{title:<{width}}  followed  total  accuracy")
        for key in sorted(total):
            lines.append(f"{key:<{width}}  {followed[key]:>8}  {total[key]:>5}  {followed[key] / total[key]:>8.4f}")
        lines.append("")
    return "\n".join(lines).rstrip("\n")
