"""The completion pool (methods.md 3.1): each prompt is answered ``completions`` times (4 in
UltraFeedback) by models drawn from a pool, each answer under a principle system prompt.

One :class:`UFComplete` stage per pool model (each its own engine); every stage of the pool
names the whole pool (``pool: [a, b, ...]``) and its own ``label``, and computes the same
seeded assignment of slots to models, so together they fill each row's ``completions`` list
without talking to each other. With at least as many models as slots, each prompt gets
``completions`` distinct random models, as the reference's 4-of-17; with fewer models, the
slots are split evenly (2 + 2 for two models), the odd ones to random models.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.chat_format import prompt_messages
from pipelines.errors import ConfigError
from pipelines.stage import check_flag, set_column, split_by_reason
from synth.backends.llm_stage import LLMStage
from synth.judge.ultrafeedback.seeding import row_rng, row_seed
from synth.judge.ultrafeedback.templates import (
    HONESTY_TO_CALIBRATION,
    SOURCE_PRINCIPLES,
    load_principle_prompts,
)

COMPLETION = pa.struct([("model", pa.string()), ("principle", pa.string()), ("system_prompt", pa.string()), ("text", pa.string())])
COMPLETIONS = pa.list_(COMPLETION)
POLICY_PRINCIPLE = "none"  # Tulu 3's on-policy completion: the policy's own behaviour, no principle
STOP = "\n\n\n\n"  # the reference cuts open models' completions here


def assign_slots(key: str, pool_size: int, total: int, seed: int) -> list[int]:
    """Which pool member answers each of a row's ``total`` slots.

    >>> assign_slots("row1", 17, 4, 0) == assign_slots("row1", 17, 4, 0), len(set(assign_slots("row1", 17, 4, 0)))
    (True, 4)
    >>> sorted(assign_slots("row1", 2, 4, 0))
    [0, 0, 1, 1]
    """
    rng = row_rng(seed, "pool", key)
    if pool_size >= total:
        return [int(x) for x in rng.choice(pool_size, size=total, replace=False)]
    counts = np.full(pool_size, total // pool_size)
    counts[rng.choice(pool_size, size=total % pool_size, replace=False)] += 1
    return [m for m in range(pool_size) for _ in range(int(counts[m]))]


def sample_principle(key: str, slot: int, source: str, seed: int, prompts: dict[str, tuple[str, ...]]) -> tuple[str, str]:
    """(principle, system prompt) for one slot, drawn as ``main.py`` does for ``source``.

    >>> p = {"helpfulness": ("Be helpful.",)}
    >>> sample_principle("r", 0, "evol_instruct", 0, p)
    ('helpfulness', 'Be helpful.')
    """
    rng = row_rng(seed, "principle", key, slot)
    mix = SOURCE_PRINCIPLES[source]
    principle = mix[int(rng.integers(len(mix)))]
    if principle == "honesty" and rng.random() < HONESTY_TO_CALIBRATION:
        principle = "verbalized_calibration"
    options = prompts[principle]
    return principle, options[int(rng.integers(len(options)))]


def principle_mix(sources: Sequence[str], n: int, seed: int = 0) -> dict[str, float]:
    """The share of each principle over ``n`` draws per source (checks the 60/20/18/2 split).

    >>> mix = principle_mix(["sharegpt"], 4000)
    >>> round(mix["helpfulness"], 1), round(mix["truthfulness"], 1)
    (0.6, 0.2)
    """
    prompts = load_principle_prompts(None)
    counts: dict[str, int] = {}
    for s in sources:
        for i in range(n):
            p, _ = sample_principle(f"k{i}", 0, s, seed, prompts)
            counts[p] = counts.get(p, 0) + 1
    total = sum(counts.values())
    return {k: v / total for k, v in sorted(counts.items())}


class UFComplete(LLMStage):
    """One pool model's completions, appended to the ``completions`` list column.

    Input: ``column`` (``instruction`` text or a ``messages`` list), ``id``, and optionally
    ``source`` (UltraFeedback's subset names pick the principle mix; others use
    ``fallback_source``) and an earlier pool stage's ``completions``. Output:
    ``completions`` list<struct{model, principle, system_prompt, text}>, this stage's
    answers appended, ``model`` being ``label``. Rejected: ``prompt_too_long``,
    ``empty_completion`` (raw text kept).

    Defaults are the reference's for open models: temperature 1.0, top_p 1.0, 1024 new
    tokens, cut at four newlines; 4 completions per prompt. ``policy: true`` makes this the
    Tulu 3 on-policy member: one completion for every prompt, outside the pool's slots,
    with no principle prompt.
    """

    default_sampling = {"temperature": 1.0, "top_p": 1.0, "max_tokens": 1024, "stop": [STOP]}
    adds = {"completions": COMPLETIONS}
    version = "1"

    def __init__(self, *, column: str = "instruction", label: str | None = None, pool: Sequence[str] | None = None, completions: int = 4, policy: bool = False,
                 source_column: str = "source", fallback_source: str = "sharegpt", principle_prompts: Any = None, seed: int = 0, **llm: Any) -> None:
        super().__init__(**llm)
        check_flag("policy", policy)
        label = str(label if label is not None else self.model)
        pool = [str(p) for p in (pool or [label])]
        if label not in pool and not policy:
            raise ConfigError(f"label {label!r} is not in pool {pool}", hint="list every pool stage's label in each stage's pool")
        if len(set(pool)) != len(pool):
            raise ConfigError(f"pool has repeated labels: {pool}")
        if not isinstance(completions, int) or completions < 1:
            raise ConfigError(f"completions must be a positive integer, got {completions!r}")
        if fallback_source not in SOURCE_PRINCIPLES:
            raise ConfigError(f"fallback_source must be one of {', '.join(SOURCE_PRINCIPLES)}, got {fallback_source!r}")
        self.column, self.label, self.pool, self.total, self.policy = column, label, pool, completions, policy
        self.source_column, self.fallback_source, self.seed = source_column, fallback_source, int(seed)
        self.prompts = load_principle_prompts(principle_prompts)
        self.requires = {column: None, "id": pa.string()}
        self.params.update(column=column, label=label, pool=pool, completions=completions, policy=policy, source_column=source_column, fallback_source=fallback_source, principle_prompts=principle_prompts, seed=seed)

    def models(self) -> dict[str, str]:
        return {f"completions ({self.label})": str(self.model)}

    def my_slots(self, key: str) -> list[int]:
        """The slots of row ``key`` this stage answers."""
        if self.policy:
            return [self.total]  # one slot past the pool's
        me = self.pool.index(self.label)
        return [s for s, m in enumerate(assign_slots(key, len(self.pool), self.total, self.seed)) if m == me]

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        ids = table.column("id").to_pylist()
        sources = table.column(self.source_column).to_pylist() if self.source_column in table.column_names else [None] * table.num_rows
        rows = table.select([c for c in (self.column, "input") if c in table.column_names]).to_pylist()
        chats, seeds, owner, meta = [], [], [], []
        for r, (key, row, src) in enumerate(zip(ids, rows, sources)):
            base = prompt_messages(row, self.column)
            own_system = base[0]["content"] if base and base[0]["role"] == "system" else None
            turns = [m for m in base if m["role"] != "system"]
            for slot in self.my_slots(key):
                if self.policy:
                    principle, sp = POLICY_PRINCIPLE, ""
                else:
                    principle, sp = sample_principle(key, slot, src if src in SOURCE_PRINCIPLES else self.fallback_source, self.seed, self.prompts)
                system = " ".join(x for x in (own_system, sp) if x)
                chats.append(([{"role": "system", "content": system}] if system else []) + turns)
                seeds.append(row_seed(self.seed, "complete", self.label, key, slot))
                owner.append(r)
                meta.append((principle, sp))
        outs = self.engine_llm.chat(chats, self.sampling, seeds=seeds) if chats else []
        new: list[list[dict[str, str]]] = [[] for _ in range(table.num_rows)]
        reasons: list[str | None] = [None] * table.num_rows
        raw: list[str | None] = [None] * table.num_rows
        for r, (principle, sp), out in zip(owner, meta, outs):
            text = out.text.split(STOP)[0].strip()
            if (out.error or not text) and reasons[r] is None:
                reasons[r] = out.error.split(":")[0] if out.error else "empty_completion"
                raw[r] = out.error or out.text
            new[r].append({"model": self.label, "principle": principle, "system_prompt": sp, "text": text})
        if "completions" in table.column_names:
            old = table.column("completions").to_pylist()
            new = [(o or []) + n for o, n in zip(old, new)]
        table = set_column(table, "completions", pa.array(new, COMPLETIONS))
        return split_by_reason(table, reasons, raw=raw)
