"""Reward scores for responses: a sequence-classification reward model the user names
(Magpie: FsfairX-LLaMA3-RM, ArmoRM), or, with no reward model at hand (none ships on PyPI),
the chat model as a judge giving 1-10.

Works on one ``response`` per row (-> ``instruct_reward``, Magpie's column) or on a list of
``responses`` (-> ``rewards``, for best-of-n pairs).
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from pipelines.errors import ConfigError, ParseError
from pipelines.stage import set_column, split_by_reason
from synth.backends.llm_stage import LLMStage

JUDGE_PROMPT = """Rate how well the response answers the user's instruction: helpful, correct, clear and complete.
Use a scale from 1 (useless or wrong) to 10 (excellent). Reply with the number only.

# Instruction
{instruction}

# Response
{response}"""
SCORES = [str(i) for i in range(1, 11)]


def parse_judge_score(text: str) -> float:
    """First integer 1-10 in the judge's reply."""
    m = re.search(r"\b(10|[1-9])\b", text or "")
    if not m:
        raise ParseError("no score 1-10 in the judge's reply", raw=text)
    return float(m.group(1))


class RewardScore(LLMStage):
    """Score ``column`` (``response`` text or ``responses`` list) against ``instruction``.

    ``reward_model``: path or hub id of an ``AutoModelForSequenceClassification`` reward model
    (raw scalar output, chat template applied as Magpie does). Without it the LLM judges.
    Adds ``instruct_reward`` (float) or ``rewards`` (list of float) and ``reward_model``.
    Rejected: ``parse_error:reward`` (judge output with no score, raw kept), ``prompt_too_long``.
    """

    requires = {"instruction": pa.string()}
    default_sampling = {"temperature": 0.0, "max_tokens": 4}

    def __init__(self, *, column: str = "response", reward_model: str | None = None, batch_size: int = 8, device: str | None = None, **llm: Any) -> None:
        super().__init__(**llm)
        if column not in ("response", "responses"):
            raise ConfigError(f"column must be 'response' or 'responses', got {column!r}")
        self.column, self.reward_model, self.batch_size, self.device = column, reward_model, int(batch_size), device
        self.out = "instruct_reward" if column == "response" else "rewards"
        self.params.update(column=column, reward_model=reward_model)
        self.requires = {"instruction": pa.string(), column: pa.string() if column == "response" else pa.list_(pa.string())}
        self.adds = {self.out: pa.float64() if column == "response" else pa.list_(pa.float64()), "reward_model": pa.string()}
        self._rm: Any = None

    def models(self) -> dict[str, str]:
        return {"reward_model": self.reward_model} if self.reward_model else {"judge": str(self.model)}

    def load(self) -> None:
        if self.reward_model is None:
            super().load()
            return
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from synth.backends.models import resolve_model

        path = resolve_model(self.reward_model)
        dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        tok = AutoTokenizer.from_pretrained(path)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model = AutoModelForSequenceClassification.from_pretrained(path).to(dev).eval()
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tok.pad_token_id
        self._rm = (tok, model, dev)

    def _rm_scores(self, pairs: list[tuple[str, str]]) -> list[float]:
        import torch

        tok, model, dev = self._rm
        texts = []
        for ins, res in pairs:
            chat = [{"role": "user", "content": ins}, {"role": "assistant", "content": res}]
            texts.append(tok.apply_chat_template(chat, tokenize=False) if tok.chat_template else f"{ins}\n\n{res}")
        scores: list[float] = []
        for b in range(0, len(texts), self.batch_size):
            enc = tok(texts[b : b + self.batch_size], return_tensors="pt", padding=True, truncation=True, max_length=2048, add_special_tokens=False).to(dev)
            with torch.no_grad():
                scores += model(**enc).logits[:, 0].float().cpu().tolist()
        return scores

    def _judge(self, pairs: list[tuple[str, str]]) -> tuple[list[float | None], list[str | None], list[str]]:
        chats = [[{"role": "user", "content": JUDGE_PROMPT.format(instruction=i, response=r)}] for i, r in pairs]
        outs = self.engine_llm.chat(chats, {**self.sampling, "structured_outputs": {"choice": SCORES}} if (self.backend or "vllm") != "transformers" else self.sampling)
        scores: list[float | None] = []
        errors: list[str | None] = []
        for o in outs:
            try:
                scores.append(None if o.error else parse_judge_score(o.text))
                errors.append(o.error.split(":")[0] if o.error else None)
            except ParseError:
                scores.append(None)
                errors.append("parse_error:reward")
        return scores, errors, [o.text for o in outs]

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        ins = table.column("instruction").to_pylist()
        vals = table.column(self.column).to_pylist()
        lists = vals if self.column == "responses" else [[v] for v in vals]
        flat = [(i, r or "") for i, rs in zip(ins, lists) for r in rs]
        if self._rm is not None:
            scores, errors, raws = self._rm_scores(flat), [None] * len(flat), [""] * len(flat)
        else:
            scores, errors, raws = self._judge(flat)
        reasons: list[str | None] = []
        out_vals: list[Any] = []
        raw_rows: list[str] = []
        k = 0
        for rs in lists:
            n = len(rs)
            errs = [e for e in errors[k : k + n] if e]
            reasons.append(errs[0] if errs else None)
            row = scores[k : k + n]
            out_vals.append(row if self.column == "responses" else row[0])
            raw_rows.append("\n".join(str(x) for x in raws[k : k + n]))
            k += n
        table = set_column(table, self.out, pa.array(out_vals, self.adds[self.out]))
        table = set_column(table, "reward_model", pa.array([self.reward_model or f"judge:{self.engine_llm.name}"] * table.num_rows, pa.string()))
        return split_by_reason(table, reasons, raw=raw_rows)
