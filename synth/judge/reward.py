"""Reward scores for responses: a sequence-classification reward model the user names, or,
with no reward model at hand (none ships on PyPI), the chat model as a 1-10 judge.

Two kinds of score, two columns, because a threshold only means something in its own units:

* ``instruct_reward`` is a **reward model's raw scalar**, Magpie's column (methods.md 1.7):
  Magpie scores with ``sfairXC/FsfairX-LLaMA3-RM-v0.1`` and its filtered sets keep
  ``instruct_reward >= -10`` (Magpie-Pro-300K-Filtered card).
* ``judge_score`` is the **LLM judge's expected score** in [1, 10]. A 1-10 score would pass
  a ``>= -10`` filter every time, so it never goes into ``instruct_reward``.

With ``column: responses`` (best-of-n pairs) either kind goes into the ``rewards`` list, which
only orders a prompt's samples; ``reward_model`` names the scorer (``judge:<model>`` for the
judge) so the kind is always on record.

Reward models on a GPU (transformers; the default ``max_length`` 4096 fits both)::

    - {name: reward, stage: reward_score, reward_model: sfairXC/FsfairX-LLaMA3-RM-v0.1}
    - {name: reward, stage: reward_score, reward_model: RLHFlow/ArmoRM-Llama3-8B-v0.1, trust_remote_code: true}

FsfairX is a ``LlamaForSequenceClassification`` with one label: the reward is ``logits[:, 0]``
(Magpie reads it through ``pipeline("sentiment-analysis", function_to_apply="none")``, the
same number). ArmoRM is custom code (``trust_remote_code``) whose output carries ``score``,
the gated preference score Magpie's DPO recipe ranks by (methods.md 1.10); its ``logits``
are 19 separate objectives and are not used. A model with several labels and no ``score``
is refused rather than silently read at label 0.

The judge's score is continuous, as deita's scorers (methods.md 5.1): the expected value
``sum_s s * p_s`` over the probabilities of the score tokens at the first answer position
(the answer constrained to "1".."10" by structured output), so two responses rarely tie and
best-of-n pairs exist. An integer judge gave a 135M model's samples the same number so often
that ``magpie-prefs`` made zero pairs. Where "10" is two tokens ("1", "0": SmolLM2, Llama-2,
Mistral), the mass of "1" is split by ``P("0" | "1")``, read in a second batched call that
continues the answer "1" by one token.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pyarrow as pa

from pipelines.chat_format import join_input
from pipelines.errors import ConfigError, ParseError
from pipelines.stage import set_column, split_by_reason
from synth.backends.llm_stage import LLMStage

__all__ = ["JUDGE_PROMPT", "SCORES", "RewardScore", "judge_expected_score", "label_probs", "parse_judge_score"]

JUDGE_PROMPT = """Rate how well the response answers the user's instruction: helpful, correct, clear and complete.
Use a scale from 1 (useless or wrong) to 10 (excellent). Reply with the number only.

# Instruction
{instruction}

# Response
{response}"""
SCORES = [str(i) for i in range(1, 11)]


def parse_judge_score(text: str) -> float:
    """First integer 1-10 in the judge's reply (used only where an engine returns no logprobs).

    >>> parse_judge_score("Score: 10/10")
    10.0
    """
    m = re.search(r"\b(10|[1-9])\b", text or "")
    if not m:
        raise ParseError("no score 1-10 in the judge's reply", raw=text)
    return float(m.group(1))


def _spelling(token: str) -> str:
    return token.replace("\u2581", " ").replace("\u0120", " ").strip()


def label_probs(top: Mapping[str, float], labels: Sequence[str]) -> list[float]:
    """Probability of each label among the top-k ``{token text: logprob}``: a token counts
    for a label when it spells it once whitespace (and SentencePiece's / byte-BPE's space
    markers) is stripped; variants add up. A label outside the top-k gets 0.

    >>> [round(p, 3) for p in label_probs({"3": math.log(0.2), " 3": math.log(0.1), "x": -0.1}, ["3", "4"])]
    [0.3, 0.0]
    """
    found = dict.fromkeys(labels, 0.0)
    for token, lp in top.items():
        key = _spelling(token)
        if key in found and lp is not None and not math.isnan(lp):
            found[key] += math.exp(lp)
    return [found[lab] for lab in labels]


def judge_expected_score(first: Mapping[str, float], after_one: Mapping[str, float] | None = None) -> float:
    """Expected 1-10 score from the first answer position's top logprobs.

    Parameters
    ----------
    first
        ``{token text: logprob}`` at the first generated position.
    after_one
        The top logprobs of the token after an answer "1"; ``P("0")`` there is the share of
        "1"'s mass that is really "10". ``None``: all of it counts as 1.

    Raises
    ------
    ParseError
        No score token is among the alternatives.

    Examples
    --------
    >>> judge_expected_score({"7": math.log(0.5), "8": math.log(0.5)})
    7.5
    >>> judge_expected_score({"1": math.log(0.5), "9": math.log(0.5)}, {"0": math.log(0.8), "<eos>": math.log(0.2)})
    8.6
    >>> judge_expected_score({"10": -0.1, "Great": -2.0})  # "10" as one token (Llama-3)
    10.0
    """
    p = label_probs(first, SCORES)
    q = label_probs(after_one, ["0"])[0] if after_one else 0.0
    q = min(max(q, 0.0), 1.0)
    p[9] += p[0] * q
    p[0] *= 1.0 - q
    total = sum(p)
    if total <= 0.0:
        top = ", ".join(f"{t!r}: {lp:.2f}" for t, lp in sorted(first.items(), key=lambda kv: -kv[1])[:10])
        raise ParseError(f"none of the scores 1-10 is among the top-{len(first)} tokens", raw=top)
    return round(sum((i + 1) * x for i, x in enumerate(p)) / total, 6)


def _rm_forward(model: Any, enc: Any) -> list[float]:
    """One reward per row: ArmoRM-style ``output.score``, else the single label's logit."""
    out = model(**enc)
    score = getattr(out, "score", None)
    if score is None:
        if out.logits.shape[-1] != 1:
            msg = f"the reward model returns {out.logits.shape[-1]} logits per text and no `score`: which one is the reward is not known"
            raise ConfigError(msg, hint="use a one-label reward model (FsfairX-LLaMA3-RM) or one whose output has `score` (ArmoRM)")
        score = out.logits[:, 0]
    return score.reshape(-1).float().cpu().tolist()


class RewardScore(LLMStage):
    """Score ``column`` (``response`` text or ``responses`` list) against ``instruction``
    (and Alpaca's ``input``, joined by :func:`pipelines.chat_format.join_input`).

    Parameters
    ----------
    column
        ``"response"`` or ``"responses"``.
    reward_model
        Path or hub id of an ``AutoModelForSequenceClassification`` reward model (raw
        scalar; chat template applied as Magpie does: the template's BOS stripped, the
        tokenizer's own added). ``None``: the LLM judges.
    max_length
        Tokens of (instruction, response) the reward model reads; longer texts lose their
        end and are flagged in ``reward_truncated`` (kept: a user decides with it).
    trust_remote_code, dtype, batch_size, device
        For the reward model (ArmoRM needs ``trust_remote_code``; ``dtype`` auto: bf16 on
        CUDA as Magpie, fp32 on CPU). A tokenizer without a pad token is run one text at
        a time: padding with eos would move the classifier's "last token" (Llama-3's
        template ends with eos).

    Columns
    -------
    Adds, with a reward model: ``instruct_reward`` (float64) or ``rewards`` (list<float64>),
    ``reward_model`` and ``reward_truncated`` (bool: some text was cut at ``max_length``).
    With the judge: ``judge_score`` (float64, expected score in [1, 10]) or ``rewards``, and
    ``reward_model`` = ``judge:<model>``.
    Rejected: ``parse_error:reward`` (no score token among the judge's top logprobs; they are
    kept in ``reject_raw``), ``prompt_too_long``, ``server_error``.
    """

    requires: ClassVar[Mapping[str, pa.DataType | None]] = {"instruction": pa.string()}
    default_sampling: ClassVar[dict[str, Any]] = {"temperature": 0.0, "max_tokens": 1, "logprobs": 20}

    def __init__(self, *, column: str = "response", reward_model: str | None = None, max_length: int = 4096, trust_remote_code: bool = False,
                 dtype: str = "auto", batch_size: int = 8, device: str | None = None, **llm: Any) -> None:
        super().__init__(**llm)
        if column not in ("response", "responses"):
            raise ConfigError(f"column must be 'response' or 'responses', got {column!r}")
        if not isinstance(max_length, int) or max_length < 8:
            raise ConfigError(f"max_length must be an integer >= 8, got {max_length!r}")
        if reward_model is None and not self.sampling.get("logprobs"):
            raise ConfigError("the judge reads its score from logprobs: sampling.logprobs must be >= 1 (default 20)")
        self.column, self.reward_model, self.batch_size, self.device = column, reward_model, int(batch_size), device
        self.max_length, self.trust_remote_code, self.dtype = max_length, bool(trust_remote_code), dtype
        if column == "responses":
            self.out = "rewards"
        else:
            self.out = "instruct_reward" if reward_model else "judge_score"
        self.params.update(column=column, reward_model=reward_model)
        if reward_model:
            self.params.update(max_length=max_length, trust_remote_code=self.trust_remote_code)
        self.requires = {"instruction": pa.string(), column: pa.string() if column == "response" else pa.list_(pa.string())}
        self.adds = {self.out: pa.float64() if column == "response" else pa.list_(pa.float64()), "reward_model": pa.string()}
        if reward_model:
            self.adds["reward_truncated"] = pa.bool_()
        self._rm: Any = None

    def models(self) -> dict[str, str]:
        return {"reward_model": self.reward_model} if self.reward_model else {"judge": str(self.model)}

    def engines(self) -> list[tuple[tuple, float]]:
        return [] if self.reward_model else super().engines()

    def check(self) -> None:
        if self.reward_model is None:
            super().check()
            return
        from synth.backends.models import resolve_model

        resolve_model(self.reward_model)  # a missing local folder fails here, before any model loads

    def load(self) -> None:
        if self.reward_model is None:
            super().load()
            return
        if self._rm is not None:
            return
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from synth.backends.models import resolve_model

        path = resolve_model(self.reward_model)
        dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = (torch.bfloat16 if dev.startswith("cuda") else torch.float32) if self.dtype == "auto" else getattr(torch, self.dtype)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=self.trust_remote_code)
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype, trust_remote_code=self.trust_remote_code).to(dev).eval()
        batch = self.batch_size if tok.pad_token is not None else 1
        if tok.pad_token is not None:
            tok.padding_side = "right"
            if model.config.pad_token_id is None:
                model.config.pad_token_id = tok.pad_token_id
        self._rm = (tok, model, dev, batch)

    def _rm_scores(self, pairs: list[tuple[str, str]]) -> tuple[list[float], list[bool]]:
        import torch

        tok, model, dev, batch = self._rm
        texts = []
        for ins, res in pairs:
            chat = [{"role": "user", "content": ins}, {"role": "assistant", "content": res}]
            text = tok.apply_chat_template(chat, tokenize=False) if tok.chat_template else f"{ins}\n\n{res}"
            # Magpie (exp/unitag.py) strips the template's BOS and lets the tokenizer add its own: BOS once
            texts.append(text.replace(tok.bos_token, "") if tok.bos_token else text)
        lengths = [len(ids) for ids in tok(texts)["input_ids"]] if texts else []
        scores: list[float] = []
        for b in range(0, len(texts), batch):
            enc = tok(texts[b : b + batch], return_tensors="pt", padding=batch > 1, truncation=True, max_length=self.max_length).to(dev)
            with torch.no_grad():
                scores += _rm_forward(model, enc)
        return scores, [n > self.max_length for n in lengths]

    def _judge(self, pairs: list[tuple[str, str]]) -> tuple[list[float | None], list[str | None], list[str]]:
        chats = [[{"role": "user", "content": JUDGE_PROMPT.format(instruction=i, response=r)}] for i, r in pairs]
        first = self.engine_llm.chat(chats, {**self.sampling, "structured_outputs": {"choice": SCORES}})
        tops = [o.completions[0].logprobs[0] if not o.error and o.completions and o.completions[0].logprobs else None for o in first]
        # P("0" | answer "1"): the share of "1"'s mass that is "10", for rows where "1" has mass
        ask = [k for k, top in enumerate(tops) if top and label_probs(top, ["1"])[0] > 1e-4]
        after: dict[int, Mapping[str, float] | None] = {}
        if ask:
            cont = self.engine_llm.chat([chats[k] + [{"role": "assistant", "content": "1"}] for k in ask], {**self.sampling, "max_tokens": 1}, continue_final_message=True)
            after = {k: (o.completions[0].logprobs[0] if not o.error and o.completions and o.completions[0].logprobs else None) for k, o in zip(ask, cont)}
        scores: list[float | None] = []
        errors: list[str | None] = []
        raws: list[str] = []
        for k, o in enumerate(first):
            raws.append(o.text)
            if o.error:
                scores.append(None)
                errors.append(o.error.split(":")[0])
                continue
            try:
                scores.append(judge_expected_score(tops[k], after.get(k)) if tops[k] else parse_judge_score(o.text))
                errors.append(None)
            except ParseError as exc:
                scores.append(None)
                errors.append("parse_error:reward")
                raws[k] = f"{o.text!r}; top tokens: {exc.raw}"
        return scores, errors, raws

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        ins = table.column("instruction").to_pylist()
        inputs = table.column("input").to_pylist() if "input" in table.column_names else [None] * len(ins)
        vals = table.column(self.column).to_pylist()
        lists = vals if self.column == "responses" else [[v] for v in vals]
        flat = [(join_input(i or "", x), r or "") for i, x, rs in zip(ins, inputs, lists) for r in (rs or [])]
        cut: list[bool] = []
        if self.reward_model:
            if self._rm is None:
                self.load()
            scores, cut = self._rm_scores(flat)
            errors, raws = [None] * len(flat), [""] * len(flat)
        else:
            s, errors, raws = self._judge(flat)
            scores = s
        reasons: list[str | None] = []
        out_vals: list[Any] = []
        raw_rows: list[str] = []
        truncated: list[bool] = []
        k = 0
        for rs in lists:
            n = len(rs or [])
            errs = [e for e in errors[k : k + n] if e]
            reasons.append(errs[0] if errs else None)
            row = scores[k : k + n]
            out_vals.append(row if self.column == "responses" else (row[0] if row else None))
            raw_rows.append("\n".join(str(x) for x in raws[k : k + n]))
            truncated.append(any(cut[k : k + n]))
            k += n
        table = set_column(table, self.out, pa.array(out_vals, self.adds[self.out]))
        table = set_column(table, "reward_model", pa.array([self.reward_model or f"judge:{self.engine_llm.name}"] * table.num_rows, pa.string()))
        if self.reward_model:
            table = set_column(table, "reward_truncated", pa.array(truncated, pa.bool_()))
        return split_by_reason(table, reasons, raw=raw_rows)
