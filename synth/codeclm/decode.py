"""CodecLM step 3, decode: metadata -> basic instructions (iteration 1 of the loop).

The strong model is the decoder, zero-shot (paper: no demonstrations, so it does not copy
them), temperature 0.7. Slots that share a metadata within a batch are written in one call
as a numbered list of that many instructions (the paper's "write N diverse instructions"),
so they differ from each other; the list is read by
:func:`synth.codeclm.parse.parse_numbered_list`.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa

from pipelines.errors import ParseError
from pipelines.stage import check_flag, set_column, split_by_reason
from synth.backends.llm_stage import LLMStage
from synth.codeclm.parse import parse_numbered_list
from synth.codeclm.prompts import decode_chat
from synth.codeclm.state import ERROR, PENDING, ROUND, ROUND_COLUMNS, STATUS, row_seeds


def decode_regex(n: int) -> str:
    """Exactly ``n`` numbered one-line items (no upper bound on length: a bounded repeat
    such as ``{10,400}`` takes xgrammar longer than vLLM's 5 s compile timeout).

    >>> import re
    >>> bool(re.fullmatch(decode_regex(2), "1. Write a limerick.\\n2. Plan a trip to Rome."))
    True
    """
    return r"\n".join(rf"{k}\. [^\n]{{10}}[^\n]*" for k in range(1, n + 1))


class CodecDecode(LLMStage):
    """Write one basic instruction per slot from its metadata.

    Input: ``id``, ``use_case``, ``skills``, ``metadata_id``. Output: ``instruction`` (the
    basic instruction) and the loop state every round stage needs: ``codeclm_status``
    (``pending``), ``codeclm_round`` (1), ``action`` (null), ``codeclm_error`` (null),
    ``lineage`` (empty). Rejected: ``parse_error:decode`` (no numbered list; raw reply
    kept), ``too_few_instructions`` (the list was shorter than the slots sharing that
    metadata), ``prompt_too_long``.
    """

    requires = {"id": pa.string(), "use_case": pa.string(), "skills": pa.list_(pa.string()), "metadata_id": pa.string()}
    adds = {"instruction": pa.string(), **ROUND_COLUMNS}
    default_sampling = {"temperature": 0.7, "max_tokens": 2048}

    def __init__(self, *, structured: bool = False, seed: int = 0, **llm: Any) -> None:
        super().__init__(**llm)
        check_flag("structured", structured)
        self.structured, self.seed = structured, int(seed)
        self.params.update(structured=structured, seed=seed)

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        rows = table.select(["id", "use_case", "skills", "metadata_id"]).to_pylist()
        groups: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(rows):
            groups[r["metadata_id"]].append(i)
        # one call per list length (equal shares give one or two lengths), each with the
        # length's own format when structured
        by_n: dict[int, list[str]] = defaultdict(list)
        for mid, members in groups.items():
            by_n[len(members)].append(mid)
        instructions = [""] * len(rows)
        reasons: list[str | None] = [None] * len(rows)
        raws: list[str | None] = [None] * len(rows)
        for n, mids in sorted(by_n.items()):
            chats = [decode_chat(rows[groups[m][0]]["use_case"], rows[groups[m][0]]["skills"], n) for m in mids]
            sampling = {**self.sampling, **({"structured_outputs": {"regex": decode_regex(n)}} if self.structured else {})}
            outs = self.engine_llm.chat(chats, sampling, seeds=row_seeds([rows[groups[m][0]]["id"] for m in mids], self.seed, "decode"))
            for mid, out in zip(mids, outs):
                members = groups[mid]
                items: list[str] = []
                reason = out.error.split(":")[0] if out.error else None
                if reason is None:
                    try:
                        items = parse_numbered_list(out.text)
                    except ParseError:
                        reason = "parse_error:decode"
                for j, i in enumerate(members):
                    raws[i] = out.text
                    if reason is None and j < len(items):
                        instructions[i] = items[j]
                    else:
                        reasons[i] = reason or "too_few_instructions"
        n = table.num_rows
        table = set_column(table, "instruction", pa.array(instructions, pa.string()))
        table = set_column(table, STATUS, pa.array([PENDING] * n, pa.string()))
        table = set_column(table, ROUND, pa.array([1] * n, pa.int64()))
        table = set_column(table, "action", pa.nulls(n, pa.string()))
        table = set_column(table, ERROR, pa.nulls(n, pa.string()))
        table = set_column(table, "lineage", pa.array([[] for _ in range(n)], ROUND_COLUMNS["lineage"]))
        return split_by_reason(table, reasons, raw=raws)
