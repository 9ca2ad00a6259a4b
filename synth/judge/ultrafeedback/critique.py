"""The overall score (methods.md 3.3): a teacher's feedback on each completion and a 1-10
score (``annotate_critique.py``), with the 2023-12 fix for scores of 10
(``fix_overall_score_issue.py``): GPT-4 had given 10 to many poor completions, so a 10 whose
``fine-grained_score`` is <= 2 becomes 1, one in (2, 4] is re-asked (score only, given the
stored feedback), and one above 4 stays.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.chat_format import prompt_messages
from pipelines.errors import ConfigError, ParseError
from pipelines.stage import check_flag, set_column, split_by_reason
from synth.backends.llm_stage import LLMStage
from synth.judge.ultrafeedback.annotate import FINE_GRAINED, GREEDY
from synth.judge.ultrafeedback.parse import (
    parse_critique,
    parse_critique_json,
    parse_score,
)
from synth.judge.ultrafeedback.pool import COMPLETIONS
from synth.judge.ultrafeedback.seeding import row_seed
from synth.judge.ultrafeedback.templates import (
    CRITIQUE_SYSTEM,
    check_structured,
    critique_regex,
    critique_schema,
    render_critique,
)

KEEP, FLIP, RESCORE = "kept", "flipped", "rescored"


def fix_action(overall: float, fine_grained: float | None) -> str:
    """What the 2023-12 fix does to one completion's overall score.

    >>> fix_action(10, 1.5), fix_action(10, 2.0), fix_action(10, 3.25), fix_action(10, 4.5), fix_action(9, 1.0)
    ('flipped', 'flipped', 'rescored', 'kept', 'kept')
    """
    if overall != 10 or fine_grained is None or np.isnan(fine_grained):
        return KEEP
    if fine_grained <= 2:
        return FLIP
    if fine_grained <= 4:
        return RESCORE
    return KEEP


class UFCritique(LLMStage):
    """Feedback and an overall 1-10 score for every completion.

    Input: ``column``, ``completions`` and, with ``fix_tens`` (default), ``fine-grained_score``
    from ``uf_rate``. Output, one entry per completion: ``critique``, ``overall_score``,
    ``overall_fix`` (``kept``, ``flipped`` to 1, or ``rescored``). Rejected:
    ``parse_error:critique`` / ``parse_error:rescore`` after ``max_retries`` re-asks (the last
    reply in ``reject_raw``), ``prompt_too_long``. ``structured``: as in ``uf_rate`` (json, or regex for the reference's
    ``...\nOverall Score: n`` text).

    The instruction shown is the prompt plus ``Note: <the completion's principle prompt>``, as
    the reference does. Defaults are the reference's (temperature 0, top_p 0.6, 1024
    tokens); the re-asked score gets ``rescore_max_tokens`` (the reference used 1 GPT-4 token).
    """

    default_sampling = {"temperature": 0.0, "top_p": 0.6, "max_tokens": 1024}
    adds = {"critique": pa.list_(pa.string()), "overall_score": pa.list_(pa.float64()), "overall_fix": pa.list_(pa.string())}
    version = "1"

    def __init__(self, *, column: str = "instruction", fix_tens: bool = True, rescore_max_tokens: int = 4, max_retries: int = 3, retry_temperature: float = 0.7, structured: bool | str = False, feedback_chars: int = 600, seed: int = 0, **llm: Any) -> None:
        super().__init__(**llm)
        check_flag("fix_tens", fix_tens)
        structured = check_structured(structured)
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if not isinstance(rescore_max_tokens, int) or rescore_max_tokens < 1:
            raise ConfigError(f"rescore_max_tokens must be a positive integer, got {rescore_max_tokens!r}")
        if structured and self.backend == "transformers":
            raise ConfigError("structured: true needs a backend with structured output", hint="use backend: vllm or openai, or structured: false")
        self.column, self.fix_tens, self.rescore_max_tokens = column, fix_tens, rescore_max_tokens
        self.max_retries, self.retry_temperature, self.structured, self.feedback_chars, self.seed = max_retries, float(retry_temperature), structured, int(feedback_chars), int(seed)
        self.requires = {column: None, "completions": COMPLETIONS, "id": pa.string(), **({FINE_GRAINED: pa.list_(pa.float64())} if fix_tens else {})}
        self.params.update(column=column, fix_tens=fix_tens, rescore_max_tokens=rescore_max_tokens, max_retries=max_retries, retry_temperature=retry_temperature, structured=structured, feedback_chars=feedback_chars, seed=seed)

    def models(self) -> dict[str, str]:
        return {"critique": str(self.model)}

    def _rescore_sampling(self) -> dict[str, Any]:
        s = {**self.sampling, "max_tokens": self.rescore_max_tokens}
        if self.structured:  # the score alone: one of "1".."10"
            s["structured_outputs"] = {"choice": [str(i) for i in range(1, 11)]}
        return s

    def _ask(self, prompts: list[str], keys: list[str], parse: Any, sampling: dict[str, Any], what: str) -> tuple[list[Any], list[str | None], list[str]]:
        """Ask every prompt, re-asking the unparseable ones; (parsed or None, error, last raw)."""
        parsed: list[Any] = [None] * len(prompts)
        errors: list[str | None] = [None] * len(prompts)
        raw = [""] * len(prompts)
        pending = list(range(len(prompts)))
        for attempt in range(self.max_retries + 1):
            if not pending:
                break
            s = dict(sampling)
            if attempt > 0 and float(s.get("temperature") or 0.0) < GREEDY:
                s["temperature"] = self.retry_temperature
            chats = [[{"role": "system", "content": CRITIQUE_SYSTEM}, {"role": "user", "content": prompts[i]}] for i in pending]
            seeds = [row_seed(self.seed, what, keys[i], attempt) for i in pending] if attempt else None
            still = []
            for i, out in zip(pending, self.engine_llm.chat(chats, s, seeds=seeds)):
                if out.error:
                    errors[i], raw[i] = out.error.split(":")[0], out.error
                    continue
                try:
                    parsed[i] = parse(out.text)
                except ParseError:
                    raw[i] = out.text
                    still.append(i)
            pending = still
        return parsed, errors, raw

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        ids = table.column("id").to_pylist()
        comps = [cs or [] for cs in table.column("completions").to_pylist()]
        rows = table.select([c for c in (self.column, "input") if c in table.column_names]).to_pylist()
        instructions = [next((m["content"] for m in reversed(prompt_messages(r, self.column)) if m["role"] == "user"), "") for r in rows]
        flat = [(r, j) for r, cs in enumerate(comps) for j in range(len(cs))]
        keys = [f"{ids[r]}:{j}" for r, j in flat]
        prompts = [render_critique(instructions[r], comps[r][j]["text"], principle=comps[r][j]["principle"], principle_prompt=comps[r][j]["system_prompt"], json_reply=self.structured == "json") for r, j in flat]
        sampling = dict(self.sampling)
        if self.structured == "json":
            sampling["structured_outputs"] = {"json": critique_schema(feedback_chars=self.feedback_chars)}
        elif self.structured == "regex":
            sampling["structured_outputs"] = {"regex": critique_regex(feedback_chars=self.feedback_chars)}
        parsed, errors, raw = self._ask(prompts, keys, parse_critique_json if self.structured == "json" else parse_critique, sampling, "critique")
        reasons: list[str | None] = [None] * table.num_rows
        rej_raw: list[str | None] = [None] * table.num_rows
        for (r, _), p, e, t in zip(flat, parsed, errors, raw):
            if p is None and reasons[r] is None:
                reasons[r], rej_raw[r] = e or "parse_error:critique", t
        critique = [[""] * len(cs) for cs in comps]
        score = [[float("nan")] * len(cs) for cs in comps]
        fix = [[KEEP] * len(cs) for cs in comps]
        for (r, j), p in zip(flat, parsed):
            if p is not None:
                critique[r][j], score[r][j] = p
        if self.fix_tens:
            fine = table.column(FINE_GRAINED).to_pylist()
            todo = []
            for n, (r, j) in enumerate(flat):
                if reasons[r] is not None:
                    continue
                fg = fine[r][j] if fine[r] and j < len(fine[r]) else None
                action = fix_action(score[r][j], fg)
                fix[r][j] = action
                if action == FLIP:
                    score[r][j] = 1.0
                elif action == RESCORE:
                    todo.append(n)
            if todo:
                re_prompts = [render_critique(instructions[flat[n][0]], comps[flat[n][0]][flat[n][1]]["text"], principle=comps[flat[n][0]][flat[n][1]]["principle"], principle_prompt=comps[flat[n][0]][flat[n][1]]["system_prompt"], critique=critique[flat[n][0]][flat[n][1]]) for n in todo]
                got, errs, texts = self._ask(re_prompts, [keys[n] for n in todo], parse_score, self._rescore_sampling(), "rescore")
                for n, g, e, t in zip(todo, got, errs, texts):
                    r, j = flat[n]
                    if g is None:
                        if reasons[r] is None:
                            reasons[r], rej_raw[r] = e or "parse_error:rescore", t
                    else:
                        score[r][j] = g
        for r in range(table.num_rows):
            if reasons[r] is not None:  # rejected: no partial scores
                critique[r], score[r], fix[r] = [], [], []
        table = set_column(table, "critique", pa.array(critique, pa.list_(pa.string())))
        table = set_column(table, "overall_score", pa.array(score, pa.list_(pa.float64())))
        table = set_column(table, "overall_fix", pa.array(fix, pa.list_(pa.string())))
        return split_by_reason(table, reasons, raw=rej_raw)
