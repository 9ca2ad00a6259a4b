"""The fine-grained judge (methods.md 3.2): each aspect rated 1-5 with rationales.

As in the reference, all completions of a prompt are rated in one call per aspect, shown
in a random order (``SHUFFLE_NUM = 1``) and mapped back afterwards. Two options measure or
remove position bias: ``orders: k`` judges k distinct shuffled orders and averages the
ratings, recording per row how often a completion got the same rating in every order
(``position_consistency``); ``mode: single`` rates each completion alone.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.chat_format import prompt_messages
from pipelines.errors import ConfigError, ParseError
from pipelines.stage import check_choice, check_flag, set_column, split_by_reason
from synth.backends.llm import Output
from synth.backends.llm_stage import LLMStage
from synth.judge.ultrafeedback.parse import Annotation, parse_aspect, parse_aspect_json
from synth.judge.ultrafeedback.pool import COMPLETIONS
from synth.judge.ultrafeedback.seeding import row_rng, row_seed
from synth.judge.ultrafeedback.templates import (
    ASPECTS,
    TYPED_ASPECTS,
    aspect_regex,
    aspect_schema,
    check_structured,
    render_aspect,
    system_prompt,
)

FINE_GRAINED = "fine-grained_score"
GREEDY = 1e-5


def rating_column(aspect: str) -> str:
    return f"rating_{aspect}"


def shuffled_orders(key: str, n: int, k: int, seed: int, aspect: str = "") -> list[tuple[int, ...]]:
    """``k`` distinct random orders of ``n`` completions (capped at n!), as the reference draws them.

    ``order[i]`` is the completion shown as text ``i + 1``.

    >>> o = shuffled_orders("row", 4, 3, 0)
    >>> len(o), len(set(o)), sorted(o[0])
    (3, 3, [0, 1, 2, 3])
    >>> shuffled_orders("row", 2, 5, 0) in ([(0, 1), (1, 0)], [(1, 0), (0, 1)])
    True
    """
    k = min(k, math.factorial(n))
    rng = row_rng(seed, "order", key, aspect)
    orders: list[tuple[int, ...]] = []
    while len(orders) < k:
        o = tuple(int(x) for x in rng.permutation(n))
        if o not in orders:
            orders.append(o)
    return orders


def map_back(shown: Sequence[Annotation], order: Sequence[int]) -> list[Annotation]:
    """Annotations per completion from annotations per shown position (``order.index(j)``).

    >>> a, b = Annotation(1, "a"), Annotation(5, "b")
    >>> [x.rating for x in map_back([a, b], (1, 0))]
    [5, 1]
    """
    return [shown[order.index(j)] for j in range(len(order))]


def combine_orders(ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean rating per completion over orders (NaN = N/A is skipped; NaN if all N/A) and
    whether each completion got the same rating in every order.

    ``ratings`` has shape (orders, completions).

    >>> mean, same = combine_orders(np.array([[4, 2, np.nan], [4, 3, np.nan]]))
    >>> mean.tolist(), same.tolist()
    ([4.0, 2.5, nan], [True, False, True])
    """
    valid = ~np.isnan(ratings)
    counts = valid.sum(axis=0)
    sums = np.where(valid, ratings, 0.0).sum(axis=0)
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    first = ratings[0]
    same = np.all((ratings == first) | (np.isnan(ratings) & np.isnan(first)), axis=0)
    return mean, same


def fine_grained_score(ratings: np.ndarray) -> np.ndarray:
    """``fine-grained_score``: per completion, the mean of its aspect ratings ignoring N/A
    (``fix_overall_score_issue.py``'s ``calculate_average_rating``); NaN if none.

    ``ratings`` has shape (aspects, completions).

    >>> fine_grained_score(np.array([[5, 1], [np.nan, 3], [4, 2], [3, 2]])).tolist()
    [4.0, 2.0]
    """
    mean, _ = combine_orders(ratings)
    return mean


def chat_calls(llm: Any, jobs: list[tuple[list, dict[str, Any], list[int] | None]]) -> list[list[Output]]:
    """``llm.chat`` for each (chats, sampling, seeds) job: concurrently when ``llm`` is an engine
    worker client (its calls from several threads share one continuous batch), one after the
    other for an in-process engine (``--debug``), which is not thread-safe."""
    if len(jobs) > 1 and getattr(llm, "call", None) is not None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(jobs)) as ex:
            return list(ex.map(lambda j: llm.chat(j[0], j[1], seeds=j[2]), jobs))
    return [llm.chat(c, s, seeds=sd) for c, s, sd in jobs]


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


class UFRate(LLMStage):
    """Rate every completion on UltraFeedback's aspects.

    Input: ``column`` (the instruction text, or messages), ``completions``, ``id``, and
    optionally ``world_knowledge`` (reference facts; truthfulness and helpfulness then use
    the reference's ``_with_answer`` templates). Output, one list entry per completion:
    ``rating_<aspect>`` (float; averaged over orders; null for honesty's N/A),
    ``rationale_<aspect>``, ``types_<aspect>`` (truthfulness, helpfulness),
    ``fine-grained_score``; per row ``judge_replies``, ``judge_parse_failures`` and, with
    ``orders > 1``, ``position_consistency`` (share of (aspect, completion) ratings equal
    across orders); ``shuffle: false`` shows them in list order instead. Rejected: ``parse_error:<aspect>`` after ``max_retries`` re-asks (the
    last reply in ``reject_raw``), ``prompt_too_long``.

    Defaults are the reference annotator's (GPT-4, temperature 0, top_p 0.6, 500 tokens).
    The reference re-asked up to 10 times; a greedy local judge repeats itself, so re-asks
    sample at ``retry_temperature``. ``structured: json`` (or ``true``) asks the engine for JSON
    that matches a schema with the same fields; ``structured: regex`` constrains the reply to
    the reference's text format itself, which small judges follow without looping in JSON
    whitespace (both need vLLM or an OpenAI-compatible server).
    """

    default_sampling = {"temperature": 0.0, "top_p": 0.6, "max_tokens": 500}
    version = "1"

    def __init__(self, *, column: str = "instruction", aspects: Sequence[str] = ASPECTS, mode: str = "joint", orders: int = 1, max_retries: int = 3, retry_temperature: float = 0.7,
                 structured: bool | str = False, rationale_chars: int = 400, world_knowledge_column: str = "world_knowledge", shuffle: bool = True, seed: int = 0, **llm: Any) -> None:
        super().__init__(**llm)
        aspects = list(aspects)
        for a in aspects:
            check_choice("aspects", a, ASPECTS)
        if not aspects or len(set(aspects)) != len(aspects):
            raise ConfigError(f"aspects must be distinct names from {list(ASPECTS)}, got {aspects}")
        check_choice("mode", mode, ("joint", "single"))
        structured = check_structured(structured)
        if not isinstance(orders, int) or orders < 1:
            raise ConfigError(f"orders must be a positive integer, got {orders!r}")
        if mode == "single" and orders != 1:
            raise ConfigError("mode 'single' shows one completion per call, so orders must be 1", hint="use mode: joint with orders: k to average k shuffled orders")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        check_flag("shuffle", shuffle)
        if not shuffle and orders != 1:
            raise ConfigError("shuffle: false shows the completions in list order, so orders must be 1")
        if structured and self.backend == "transformers":
            raise ConfigError("structured: true needs a backend with structured output", hint="use backend: vllm or openai, or structured: false")
        self.column, self.aspects, self.mode, self.orders = column, aspects, mode, orders
        self.max_retries, self.retry_temperature, self.structured = max_retries, float(retry_temperature), structured
        self.rationale_chars, self.wk_column, self.shuffle, self.seed = int(rationale_chars), world_knowledge_column, shuffle, int(seed)
        self.requires = {column: None, "completions": COMPLETIONS, "id": pa.string()}
        adds: dict[str, pa.DataType] = {}
        for a in aspects:
            adds[rating_column(a)] = pa.list_(pa.float64())
            adds[f"rationale_{a}"] = pa.list_(pa.string())
            if a in TYPED_ASPECTS:
                adds[f"types_{a}"] = pa.list_(pa.list_(pa.int8()))
        adds[FINE_GRAINED] = pa.list_(pa.float64())
        adds["judge_replies"] = pa.int32()
        adds["judge_parse_failures"] = pa.int32()
        if orders > 1:
            adds["position_consistency"] = pa.float64()
        self.adds = adds
        self.params.update(column=column, aspects=aspects, mode=mode, orders=orders, max_retries=max_retries, retry_temperature=retry_temperature, structured=structured, rationale_chars=rationale_chars, world_knowledge_column=world_knowledge_column, shuffle=shuffle, seed=seed)

    def models(self) -> dict[str, str]:
        return {"judge": str(self.model)}

    # -- calls -------------------------------------------------------------------------
    def units(self, ids: list[str], counts: list[int]) -> list[tuple[int, str, int, tuple[int, ...]]]:
        """(row, aspect, order number, order shown) for every judge call of the batch."""
        out = []
        for r, (key, n) in enumerate(zip(ids, counts)):
            for a in self.aspects:
                if self.mode == "single":
                    out += [(r, a, 0, (j,)) for j in range(n)]
                elif not self.shuffle:  # list order (judge-eval shows both orders itself)
                    out.append((r, a, 0, tuple(range(n))))
                else:
                    out += [(r, a, o, order) for o, order in enumerate(shuffled_orders(key, n, self.orders, self.seed, a))]
        return out

    def _generate(self, chats: list[list[dict[str, str]]], groups: list[tuple[str, int]], attempt: int, seeds: list[int]) -> list[Output]:
        sampling = dict(self.sampling)
        if attempt > 0 and float(sampling.get("temperature") or 0.0) < GREEDY:
            sampling["temperature"] = self.retry_temperature
        use_seeds = seeds if attempt > 0 else None
        if not self.structured:
            return self.engine_llm.chat(chats, sampling, seeds=use_seeds)
        constrain = (lambda a, n: {"json": aspect_schema(a, n, rationale_chars=self.rationale_chars)}) if self.structured == "json" else (lambda a, n: {"regex": aspect_regex(a, n, rationale_chars=self.rationale_chars)})
        # one engine call per schema (aspect, number of texts), each with all of the batch's prompts
        # for that schema; sent together, so the engine batches them as one
        keys = sorted(set(groups))
        idx = [[i for i, x in enumerate(groups) if x == g] for g in keys]
        jobs = [([chats[i] for i in ix], {**sampling, "structured_outputs": constrain(*g)}, [seeds[i] for i in ix] if use_seeds else None) for g, ix in zip(keys, idx)]
        outs: list[Output | None] = [None] * len(chats)
        for ix, got in zip(idx, chat_calls(self.engine_llm, jobs)):
            for i, o in zip(ix, got):
                outs[i] = o
        return outs  # type: ignore[return-value]

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        ids = table.column("id").to_pylist()
        comps = table.column("completions").to_pylist()
        texts = [[c["text"] for c in (cs or [])] for cs in comps]
        rows = table.select([c for c in (self.column, "input") if c in table.column_names]).to_pylist()
        instructions = [next((m["content"] for m in reversed(prompt_messages(r, self.column)) if m["role"] == "user"), "") for r in rows]
        wk = table.column(self.wk_column).to_pylist() if self.wk_column in table.column_names else [None] * table.num_rows
        units = self.units(ids, [len(t) for t in texts])
        chats = [[{"role": "system", "content": system_prompt(len(order))}, {"role": "user", "content": render_aspect(a, instructions[r], [texts[r][j] for j in order], wk[r] or None, json_reply=self.structured == "json")}] for r, a, _, order in units]
        groups = [(a, len(order)) for _, a, _, order in units]
        parser = parse_aspect_json if self.structured == "json" else parse_aspect
        parsed: list[list[Annotation] | None] = [None] * len(units)
        last_raw: list[str] = [""] * len(units)
        errors: list[str | None] = [None] * len(units)
        replies = np.zeros(table.num_rows, np.int32)
        failures = np.zeros(table.num_rows, np.int32)
        pending = list(range(len(units)))
        for attempt in range(self.max_retries + 1):
            if not pending:
                break
            seeds = [row_seed(self.seed, "rate", ids[units[i][0]], units[i][1], units[i][2], attempt) for i in pending]
            outs = self._generate([chats[i] for i in pending], [groups[i] for i in pending], attempt, seeds)
            still = []
            for i, out in zip(pending, outs):
                r, a, _, order = units[i]
                replies[r] += 1
                if out.error:
                    errors[i] = out.error.split(":")[0]
                    last_raw[i] = out.error
                    continue
                try:
                    parsed[i] = map_back(parser(out.text, a, len(order)), order) if self.mode == "joint" else parser(out.text, a, 1)
                except ParseError:
                    failures[r] += 1
                    last_raw[i] = out.text
                    still.append(i)
            pending = still
        return self._assemble(table, units, parsed, errors, last_raw, texts, replies, failures)

    # -- columns -----------------------------------------------------------------------
    def _assemble(self, table: pa.Table, units: list, parsed: list, errors: list, last_raw: list, texts: list, replies: np.ndarray, failures: np.ndarray) -> tuple[pa.Table, pa.Table]:
        nrows, k = table.num_rows, self.orders
        reasons: list[str | None] = [None] * nrows
        raw: list[str | None] = [None] * nrows
        # per row and aspect: an (orders, n) array of ratings and the first order's annotations
        grid = {(r, a): np.full((k, len(texts[r])), np.nan) for r in range(nrows) for a in self.aspects}
        first: dict[tuple[int, str], list[Annotation | None]] = {(r, a): [None] * len(texts[r]) for r in range(nrows) for a in self.aspects}
        for i, (r, a, o, order) in enumerate(units):
            if parsed[i] is None:
                if reasons[r] is None:
                    reasons[r] = errors[i] or f"parse_error:{a}"
                    raw[r] = last_raw[i]
                continue
            if self.mode == "single":
                ann = parsed[i][0]
                grid[(r, a)][0, order[0]] = np.nan if ann.rating is None else ann.rating
                first[(r, a)][order[0]] = ann
            else:
                grid[(r, a)][o] = [np.nan if x.rating is None else x.rating for x in parsed[i]]
                if o == 0:
                    first[(r, a)] = list(parsed[i])
        cols: dict[str, list] = {c: [] for c in self.adds}
        for r in range(nrows):
            if reasons[r] is not None:  # rejected: no partial ratings
                for c, typ in self.adds.items():
                    cols[c].append([] if pa.types.is_list(typ) else None)
                continue
            per_aspect, same = [], []
            for a in self.aspects:
                mean, consistent = combine_orders(grid[(r, a)])
                per_aspect.append(mean)
                same.append(consistent)
                anns = first[(r, a)]
                cols[rating_column(a)].append(_nan_to_none(mean))
                cols[f"rationale_{a}"].append([x.rationale for x in anns])
                if a in TYPED_ASPECTS:
                    cols[f"types_{a}"].append([list(x.types) for x in anns])
            cols[FINE_GRAINED].append(_nan_to_none(fine_grained_score(np.vstack(per_aspect))) if texts[r] else [])
            if "position_consistency" in cols:
                allsame = np.concatenate(same)
                cols["position_consistency"].append(float(allsame.mean()) if allsame.size else None)
            cols["judge_replies"].append(None)
            cols["judge_parse_failures"].append(None)
        cols["judge_replies"] = replies.tolist()
        cols["judge_parse_failures"] = failures.tolist()
        for c, typ in self.adds.items():
            table = set_column(table, c, pa.array(cols[c], typ))
        return split_by_reason(table, reasons, raw=raw)
