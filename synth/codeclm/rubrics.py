"""CodecLM step 4a, Self-Rubrics: per metadata, 4 rubrics and 4 matching actions.

Paper (§4.2, A.2): an "instruction judge with domain expertise" writes **4** rubrics for
what makes an instruction of this use case and skills challenging, and the 4 actions that
raise it by each rubric (temperature 0.7). They are generated once per metadata, here once
per distinct metadata in a batch, and travel with the row (``rubrics``, ``actions``), so
every later round samples from the same actions.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.errors import ConfigError, ParseError
from pipelines.stage import check_flag, set_column, split_by_reason
from synth.backends.llm_stage import LLMStage
from synth.codeclm.parse import parse_rubrics
from synth.codeclm.prompts import rubrics_chat
from synth.codeclm.state import row_seeds


def rubrics_regex(n: int = 4) -> str:
    """``Rubrics:`` and ``Actions:`` with ``n`` short numbered items each.

    >>> import re
    >>> bool(re.fullmatch(rubrics_regex(1), "Rubrics:\\n1. depth of analysis\\nActions:\\n1. ask for a proof"))
    True
    """
    items = r"\n".join(rf"{k}\. [^\n]{{5}}[^\n]*" for k in range(1, n + 1))
    return rf"Rubrics:\n{items}\nActions:\n{items}"


class CodecRubrics(LLMStage):
    """Generate rubrics and actions for each row's metadata.

    Input: ``use_case``, ``skills``, ``metadata_id``. Output: ``rubrics`` and ``actions``
    (``n`` strings each). Rejected: ``parse_error:rubrics`` (fewer than ``n`` rubrics or
    actions; raw reply kept), ``prompt_too_long``.
    """

    requires = {"use_case": pa.string(), "skills": pa.list_(pa.string()), "metadata_id": pa.string()}
    adds = {"rubrics": pa.list_(pa.string()), "actions": pa.list_(pa.string())}
    default_sampling = {"temperature": 0.7, "max_tokens": 2048}

    def __init__(self, *, n: int = 4, structured: bool = False, seed: int = 0, **llm: Any) -> None:
        super().__init__(**llm)
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"n must be a positive integer, got {n!r}")
        check_flag("structured", structured)
        self.n, self.structured, self.seed = n, structured, int(seed)
        self.params.update(n=n, structured=structured, seed=seed)

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        rows = table.select(["use_case", "skills", "metadata_id"]).to_pylist()
        first: dict[str, int] = {}
        for i, r in enumerate(rows):
            first.setdefault(r["metadata_id"], i)
        mids = list(first)
        chats = [rubrics_chat(rows[first[m]]["use_case"], rows[first[m]]["skills"], self.n) for m in mids]
        sampling = {**self.sampling, **({"structured_outputs": {"regex": rubrics_regex(self.n)}} if self.structured else {})}
        outs = self.engine_llm.chat(chats, sampling, seeds=row_seeds(mids, self.seed, "rubrics"))
        parsed: dict[str, tuple[list[str], list[str], str | None, str]] = {}
        for mid, out in zip(mids, outs):
            if out.error:
                parsed[mid] = ([], [], out.error.split(":")[0], out.text)
                continue
            try:
                rub, act = parse_rubrics(out.text, n=self.n)
                parsed[mid] = (rub, act, None, out.text)
            except ParseError:
                parsed[mid] = ([], [], "parse_error:rubrics", out.text)
        per_row = [parsed[r["metadata_id"]] for r in rows]
        table = set_column(table, "rubrics", pa.array([p[0] for p in per_row], pa.list_(pa.string())))
        table = set_column(table, "actions", pa.array([p[1] for p in per_row], pa.list_(pa.string())))
        return split_by_reason(table, [p[2] for p in per_row], raw=[p[3] if p[2] else None for p in per_row])
