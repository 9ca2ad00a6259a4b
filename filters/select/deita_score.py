"""deita's complexity and quality scores and their product, the evol score (Liu et al., ICLR
2024; methods.md section 5.1-5.2): the stage.

A conversation is scored turn by turn (complexity on the user message alone, quality on the
(user, assistant) pair) and its **evol score** is ``sum_t complexity_t * quality_t``, the key
:mod:`filters.select.deita_select` sorts by. The prompts are pure functions in
:mod:`filters.select.deita_prompts`, the expected-score maths in
:mod:`filters.select.deita_maths`; :class:`DeitaScore` only wires them to an engine and to
columns.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import pyarrow as pa

from filters.select.deita_maths import DEITA_FALLBACK, evol_score, expected_score
from filters.select.deita_prompts import (
    chat_prompt,
    complexity_prompt,
    conversation_turns,
    instruction_text,
    quality_prompt,
)
from pipelines.errors import ConfigError, ParseError
from pipelines.stage import set_column, split_by_reason
from synth.backends.llm_stage import LLMStage

__all__ = ["DeitaScore", "score_prompts"]

log = logging.getLogger(__name__)

_CUES = {"complexity": "Complexity score: ", "quality": "Quality score: "}
_VLLM_DEFAULT_MAX_LOGPROBS = 20


class DeitaScore(LLMStage):
    """Score each row's complexity and quality with deita's prompts; add the evol score.

    Parameters
    ----------
    instruction_column, response_column
        Single-turn rows (default ``instruction``/``response``). A non-empty ``input``
        column (Alpaca) is appended to the instruction, as the responder stages do.
    messages_column
        Score multi-turn ``messages`` (role/content lists) instead: per (user, assistant)
        turn, complexity on the user message alone and quality on the pair.
    complexity_model, quality_model
        Scorer models (default: the stage's ``model``). Point them at the released
        ``hkust-nlp/deita-complexity-scorer`` / ``deita-quality-scorer`` to reproduce deita.
    template
        ``"raw"``: deita's prompt as the whole input (plus BOS where the tokenizer adds one),
        as the released scorers were trained. ``"chat"``: the prompt in a user turn of the
        chat template plus :data:`CHAT_SUFFIX`, the assistant turn prefilled with
        ``"Complexity score: "``/``"Quality score: "``. ``"auto"`` (default): raw for a
        tokenizer without a chat template (the released scorers), chat otherwise.
    on_error
        A score that cannot be read (no label token in the top-k, an engine error such as
        ``prompt_too_long``): ``"reject"`` the row (default) or ``"fallback"`` to 3.0 for that
        turn, as deita does (and count it in ``deita_fallbacks``).
    sampling
        Defaults ``{temperature: 0, max_tokens: 1, logprobs: 20}``: only the first
        position's top-``logprobs`` alternatives are read. vLLM serves at most 20 unless the
        engine is built with more; a larger ``logprobs`` raises the vLLM engine's
        ``max_logprobs`` to match (deita used 1000).

    Why ``chat`` for a general chat model: on 100 Alpaca rows with SmolLM2-135M-Instruct,
    the raw prompt puts 53% (complexity) / 31% (quality) of the first token's probability on
    the six digits and its scores run backwards (a real answer outscores "I don't know."
    in 36% of rows; complexity vs. log instruction length: Spearman -0.33). With ``chat``
    the digits get 77% / 64%, all six are in the top 20 for every prompt, the real answer
    beats "I don't know." in 71% of rows (65% on another 200 rows) and complexity vs.
    length is 0.05 (0.18). Neither tells a row's own answer from another row's (46-51%):
    a 135M model is a weak judge, and the released deita scorers are the real thing.

    Columns: requires the instruction and response columns (or ``messages_column``); adds
    ``complexity_scores``, ``quality_scores`` (per turn, list<float64>), ``complexity``,
    ``quality`` (their means over turns: the single-turn scores for one turn),
    ``deita_score`` (evol score, sum over turns of complexity x quality) and, with
    ``on_error: fallback``, ``deita_fallbacks`` (int64).
    Rejection reasons: ``parse_error:deita`` (``reject_raw``: which score failed and the
    top alternatives), ``prompt_too_long``, ``no_user_turn`` (a conversation with no user
    message). Rejected rows carry null for the scores that failed.
    """

    default_sampling: ClassVar[dict[str, Any]] = {"temperature": 0.0, "max_tokens": 1, "logprobs": _VLLM_DEFAULT_MAX_LOGPROBS}
    version = "1"

    def __init__(
        self,
        *,
        instruction_column: str = "instruction",
        response_column: str = "response",
        messages_column: str | None = None,
        complexity_model: str | None = None,
        quality_model: str | None = None,
        template: str = "auto",
        on_error: str = "reject",
        **llm: Any,
    ) -> None:
        super().__init__(**llm)
        if template not in ("auto", "raw", "chat"):
            msg = f"deita_score: template must be 'auto', 'raw' or 'chat', got {template!r}"
            raise ConfigError(msg)
        if on_error not in ("reject", "fallback"):
            msg = f"deita_score: on_error must be 'reject' or 'fallback', got {on_error!r}"
            raise ConfigError(msg)
        k = self.sampling.get("logprobs")
        if not isinstance(k, int) or k < 1 or int(self.sampling.get("max_tokens") or 0) < 1:
            msg = f"deita_score: sampling needs logprobs >= 1 and max_tokens >= 1 (the score is read from the first token's top-k), got {self.sampling}"
            raise ConfigError(msg)
        self.instruction_column, self.response_column, self.messages_column = instruction_column, response_column, messages_column
        self.complexity_model = complexity_model or self.model
        self.quality_model = quality_model or self.model
        self.template, self.on_error = template, on_error
        self.params.update(instruction_column=instruction_column, response_column=response_column, messages_column=messages_column,
                           complexity_model=complexity_model, quality_model=quality_model, template=template, on_error=on_error)
        self.requires = {messages_column: None} if messages_column else {instruction_column: pa.string(), response_column: pa.string()}
        self.adds = {
            "complexity_scores": pa.list_(pa.float64()), "quality_scores": pa.list_(pa.float64()),
            "complexity": pa.float64(), "quality": pa.float64(), "deita_score": pa.float64(),
            **({"deita_fallbacks": pa.int64()} if on_error == "fallback" else {}),
        }
        self.quality_llm: Any = None

    def _engine_options(self) -> tuple[str, dict[str, Any]]:
        from synth.backends.llm import default_backend

        backend = self.backend or default_backend()
        engine = dict(self.engine)
        if backend == "vllm" and self.sampling["logprobs"] > _VLLM_DEFAULT_MAX_LOGPROBS:
            engine.setdefault("max_logprobs", self.sampling["logprobs"])
        return backend, engine

    def engines(self) -> list[tuple[tuple, float]]:
        """Both scorers' engines (one when the models match), so the executor's memory-share
        phases see the quality model too."""
        from synth.backends.llm import engine_key, memory_share

        backend, engine = self._engine_options()
        if backend == "openai":
            return []
        keys = dict.fromkeys(engine_key(backend, m, engine) for m in (self.complexity_model, self.quality_model))
        return [(k, memory_share(backend, engine)) for k in keys]

    def load(self) -> None:
        from synth.backends.llm import get_llm

        backend, engine = self._engine_options()
        if self.llm is None:
            self.llm = get_llm(backend, self.complexity_model, **engine)
            self.quality_llm = get_llm(backend, self.quality_model, **engine)  # the same engine when the models match

    def models(self) -> dict[str, str]:
        return {"complexity_model": str(self.complexity_model), "quality_model": str(self.quality_model)}

    def turns(self, table: pa.Table) -> list[list[tuple[str, str]]]:
        """Per row, its (user, assistant) turns."""
        if self.messages_column:
            return [conversation_turns(m or []) for m in table.column(self.messages_column).to_pylist()]
        instr = table.column(self.instruction_column).to_pylist()
        inputs = table.column("input").to_pylist() if "input" in table.column_names else [None] * len(instr)
        resp = table.column(self.response_column).to_pylist()
        return [[(instruction_text(i or "", x if isinstance(x, str) else None), r or "")] for i, x, r in zip(instr, inputs, resp)]

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        self.load()
        rows = self.turns(table)
        flat = [(r, t, u, a) for r, turns in enumerate(rows) for t, (u, a) in enumerate(turns)]
        c_res = score_prompts(self.llm, [complexity_prompt(u) for _, _, u, _ in flat], "complexity", self.template, self.sampling, self.backend)
        q_res = score_prompts(self.quality_llm, [quality_prompt(u, a) for _, _, u, a in flat], "quality", self.template, self.sampling, self.backend)
        n = table.num_rows
        cs: list[list[float | None]] = [[] for _ in range(n)]
        qs: list[list[float | None]] = [[] for _ in range(n)]
        fallbacks = [0] * n
        reasons: list[str | None] = ["no_user_turn" if not turns else None for turns in rows]
        raws: list[str | None] = [None] * n
        for (r, t, _, _), c, q in zip(flat, c_res, q_res):
            for kind, (score, reason, raw), out in (("complexity", c, cs), ("quality", q, qs)):
                if reason is not None and self.on_error == "fallback":
                    score, reason = DEITA_FALLBACK, None
                    fallbacks[r] += 1
                out[r].append(score)
                if reason is not None and reasons[r] is None:
                    reasons[r], raws[r] = reason, f"{kind} turn {t + 1}: {raw}"
        ok = [reason is None for reason in reasons]
        table = set_column(table, "complexity_scores", pa.array(cs, pa.list_(pa.float64())))
        table = set_column(table, "quality_scores", pa.array(qs, pa.list_(pa.float64())))
        table = set_column(table, "complexity", pa.array([_mean(c) if k else None for c, k in zip(cs, ok)], pa.float64()))
        table = set_column(table, "quality", pa.array([_mean(q) if k else None for q, k in zip(qs, ok)], pa.float64()))
        table = set_column(table, "deita_score", pa.array([evol_score(c, q) if k else None for c, q, k in zip(cs, qs, ok)], pa.float64()))  # type: ignore[arg-type]
        if self.on_error == "fallback":
            table = set_column(table, "deita_fallbacks", pa.array(fallbacks, pa.int64()))
        return split_by_reason(table, reasons, raw=raws)


def _mean(values: Sequence[float | None]) -> float:
    return float(sum(values)) / len(values)  # type: ignore[arg-type]


def score_prompts(llm: Any, prompts: Sequence[str], kind: str, template: str, sampling: dict[str, Any], backend: str | None) -> list[tuple[float | None, str | None, str | None]]:
    """Run deita prompts through ``llm`` in one call; per prompt (score, reason, raw) with
    ``reason`` None on success."""
    if not prompts:
        return []
    tok = None
    try:
        tok = llm.tokenizer
    except Exception as exc:  # noqa: BLE001 - a server without a local tokenizer: assume a chat model
        log.debug("no local tokenizer for %s (%s): using the chat template", getattr(llm, "name", llm), exc)
    use_chat = template == "chat" or (template == "auto" and (tok is None or bool(getattr(tok, "chat_template", None))))
    if use_chat:
        chats = [chat_prompt(p) + [{"role": "assistant", "content": _CUES[kind]}] for p in prompts]
        outs = llm.chat(chats, sampling, continue_final_message=True)
    else:
        bos = _bos_prefix(tok) if backend != "openai" else ""
        outs = llm.generate([bos + p for p in prompts], sampling)
    results: list[tuple[float | None, str | None, str | None]] = []
    for out in outs:
        if out.error:
            results.append((None, out.error.split(":")[0], out.error))
            continue
        first = out.completions[0].logprobs[0] if out.completions and out.completions[0].logprobs else None
        if not first:
            results.append((None, "parse_error:deita", f"no logprobs returned (text {out.text!r})"))
            continue
        try:
            results.append((expected_score(first), None, None))
        except ParseError as exc:
            results.append((None, "parse_error:deita", exc.raw))
    return results


def _bos_prefix(tok: Any) -> str:
    """The BOS text when the tokenizer adds one by default (Llama: ``<s>``): the backends
    tokenize raw prompts without special tokens, and deita's scorers saw BOS in training."""
    if tok is None or not getattr(tok, "bos_token", None):
        return ""
    with_special = tok("a")["input_ids"]
    plain = tok("a", add_special_tokens=False)["input_ids"]
    return tok.bos_token if len(with_special) > len(plain) and with_special[0] == tok.bos_token_id else ""
