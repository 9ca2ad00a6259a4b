"""Verify responses against their typed constraints (ACT's verifiers, methods.md 4.1).

Each row carries IFEval-format constraints (``instruction_id_list`` + ``kwargs``); ids
of the IFEval registry (:mod:`filters.verify.ifeval`) and of IFBench (:mod:`filters.verify.ifbench`)
can be mixed in one row. Every constraint is checked with IFEval's strict or loose
protocol, and the verdicts give ACT's constraint satisfaction rate (CSR, satisfied /
applicable constraints, Wang et al., arXiv 2403.06326), per response.

``kwargs`` comes in any of the forms prompt files use: a list of dicts (IFEval's
``input_data.jsonl``; Arrow reads it as ``list<struct>`` with every kwarg name of the file,
``None`` where unused, and ``None`` values are dropped), a JSON string holding that list
(what :class:`~filters.verify.extract.ExtractConstraints` writes), or a list of JSON
strings, one per id.

>>> verify_constraints("hello there", "p", ["punctuation:no_comma", "count:numbers"], [{}, {"N": 1}])
[True, False]
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.stage import Stage, check_choice, check_flag, set_column, split_by_reason

__all__ = ["VerifyConstraints", "parse_kwargs", "verify_constraints"]

Mode = Literal["strict", "loose"]


def parse_kwargs(value: Any, n: int) -> list[dict[str, Any]]:
    """One kwargs dict per instruction id, whichever form the row stores them in.

    >>> parse_kwargs('[{"num_words": 5, "relation": "at least"}]', 1)
    [{'num_words': 5, 'relation': 'at least'}]
    >>> parse_kwargs([{"keywords": None, "num_bullets": 3}], 1)
    [{'num_bullets': 3}]
    """
    if value is None:
        return [{} for _ in range(n)]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            msg = f"kwargs is not valid JSON ({exc.msg})"
            raise ConfigError(msg) from None
    if not isinstance(value, list):
        msg = f"kwargs must be a list with one dict per instruction id, got {type(value).__name__}"
        raise ConfigError(msg)
    out = []
    for item in value:
        if isinstance(item, str):
            item = json.loads(item) if item.strip() else {}
        if item is None:
            item = {}
        if not isinstance(item, Mapping):
            msg = f"each kwargs entry must be a dict, got {type(item).__name__}"
            raise ConfigError(msg)
        out.append({k: v for k, v in item.items() if v is not None})
    if len(out) != n:
        msg = f"{n} instruction ids but {len(out)} kwargs entries"
        raise ConfigError(msg)
    return out


def verify_constraints(response: str, prompt: str, instruction_ids: Sequence[str], kwargs_list: Sequence[Mapping[str, Any]], mode: Mode = "strict") -> list[bool]:
    """One verdict per constraint; IFEval and IFBench ids may be mixed.

    Raises ``ConfigError`` for an id neither registry knows, or kwargs its checker refuses.
    """
    from filters.verify.ifbench import IFBENCH_CHECKERS, verify_ifbench
    from filters.verify.ifeval import CHECKERS, verify

    verdicts: list[bool | None] = [None] * len(instruction_ids)
    groups: dict[str, list[int]] = {"ifeval": [], "ifbench": []}
    for i, iid in enumerate(instruction_ids):
        if iid in CHECKERS:
            groups["ifeval"].append(i)
        elif iid in IFBENCH_CHECKERS:
            groups["ifbench"].append(i)
        else:
            msg = f"unknown instruction id {iid!r} (neither an IFEval nor an IFBench id)"
            raise ConfigError(msg)
    for name, idx in groups.items():
        if not idx:
            continue
        ids, kws = [instruction_ids[i] for i in idx], [kwargs_list[i] for i in idx]
        got = verify(response, prompt, ids, kws, mode) if name == "ifeval" else verify_ifbench(response, prompt, ids, kws, mode=mode)
        for i, v in zip(idx, got):
            verdicts[i] = v
    return [bool(v) for v in verdicts]


class VerifyConstraints(Stage):
    """Check each response against the row's constraints; add verdicts and CSR.

    Input: ``column`` (``response``, or a list column such as ``responses`` from
    ``sample_responses``: then every element is checked), ``prompt_column`` (the prompt
    text some checkers read, default ``instruction``), ``instruction_id_list`` and
    ``kwargs``. Output: ``follow_instruction_list`` (list<bool>, or list<list<bool>> for a
    list column) and ``constraint_satisfaction`` (float64 CSR, or list<float64>).

    Rejected: nothing for failing a constraint unless ``reject_failed: true``; then a row
    whose response (for a list column: every response) misses a constraint goes with
    ``constraint_failed:<id>``, the first id the best response misses. Always rejected, as
    the CSR is undefined there: ``no_constraints`` (empty id list) and
    ``invalid_constraint:<id>`` (an unknown id or kwargs its checker refuses;
    ``invalid_constraint:kwargs`` when the kwargs do not parse; the message is kept as raw
    text).
    """

    version = "1"

    def __init__(self, *, column: str = "response", multiple: bool | None = None, prompt_column: str = "instruction", mode: Mode = "strict", reject_failed: bool = False) -> None:
        check_choice("mode", mode, ("strict", "loose"))
        check_flag("reject_failed", reject_failed)
        self.column, self.prompt_column, self.mode, self.reject_failed = column, prompt_column, mode, reject_failed
        self.multiple = column == "responses" if multiple is None else bool(multiple)
        self.params = {"column": column, "multiple": self.multiple, "prompt_column": prompt_column, "mode": mode, "reject_failed": reject_failed}
        self.requires = {column: pa.list_(pa.string()) if self.multiple else pa.string(), prompt_column: pa.string(), "instruction_id_list": pa.list_(pa.string()), "kwargs": None}
        self.adds = (
            {"follow_instruction_list": pa.list_(pa.list_(pa.bool_())), "constraint_satisfaction": pa.list_(pa.float64())}
            if self.multiple
            else {"follow_instruction_list": pa.list_(pa.bool_()), "constraint_satisfaction": pa.float64()}
        )

    def _row(self, responses: list[str], prompt: str, ids: list[str], kwargs: Any) -> tuple[list[list[bool]], list[float], str | None, str | None]:
        """(verdicts, CSRs, reason, raw) of one row."""
        from filters.verify.ifeval import satisfaction_rate

        if not ids:
            return [[] for _ in responses], [0.0 for _ in responses], "no_constraints", None
        empty = [[] for _ in responses], [0.0 for _ in responses]
        try:
            kws = parse_kwargs(kwargs, len(ids))
        except ConfigError as exc:
            return *empty, "invalid_constraint:kwargs", exc.message
        try:
            verdicts = [verify_constraints(r or "", prompt, ids, kws, self.mode) for r in responses]
        except ConfigError as exc:
            bad = next((iid for iid, kw in zip(ids, kws) if _invalid(iid, kw, prompt, self.mode)), ids[0])
            return *empty, f"invalid_constraint:{bad}", exc.message
        csrs = [satisfaction_rate(v) for v in verdicts]
        reason = None
        if self.reject_failed and responses and max(csrs) < 1.0:
            best = verdicts[csrs.index(max(csrs))]
            reason = f"constraint_failed:{ids[best.index(False)]}"
        return verdicts, csrs, reason, None

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        cols = [table.column(c).to_pylist() for c in (self.column, self.prompt_column, "instruction_id_list", "kwargs")]
        follows, csrs, reasons, raws = [], [], [], []
        for response, prompt, ids, kwargs in zip(*cols):
            responses = list(response or []) if self.multiple else [response]
            v, c, reason, raw = self._row(responses, prompt or "", list(ids or []), kwargs)
            follows.append(v if self.multiple else v[0])
            csrs.append(c if self.multiple else c[0])
            reasons.append(reason)
            raws.append(raw)
        table = set_column(table, "follow_instruction_list", pa.array(follows, self.adds["follow_instruction_list"]))
        table = set_column(table, "constraint_satisfaction", pa.array(csrs, self.adds["constraint_satisfaction"]))
        return split_by_reason(table, reasons, raw=raws)


def _invalid(instruction_id: str, kwargs: Mapping[str, Any], prompt: str, mode: Mode) -> bool:
    """Whether this one constraint is what made a row's verification fail."""
    try:
        verify_constraints("probe", prompt, [instruction_id], [kwargs], mode)
    except ConfigError:
        return True
    return False
