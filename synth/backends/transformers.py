"""transformers backend: CPU or CUDA, the fallback when vLLM is absent, and the source
of hidden states (CHES needs the last-layer states that vLLM does not expose).

Structured outputs (``sampling["structured_outputs"]``), so that the stages that ask for
them (Magpie's tags, the judge) run here too:

* ``{"choice": [...]}`` is real constrained decoding: a token trie of the choices drives
  ``prefix_allowed_tokens_fn``, so the text is always one of the choices (logprobs stay
  the model's raw ones, as vLLM reports them);
* ``{"json": schema}`` is Magpie's own method (``exp/unitag.py``): the answer is prefilled
  with ``{`` and stops at the first ``}`` (kept), and the text comes back as ``{...}``.
  The schema is not enforced: an answer that does not parse is the stage's rejected row,
  as in Magpie. Flat objects only (Magpie's tag schemas are flat): a nested ``}`` ends it;
* ``regex`` and ``grammar`` are refused with a ``BackendError``.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pipelines.errors import BackendError
from synth.backends.llm import Chat, Completion, Output, check_sampling
from synth.backends.models import resolve_model

log = logging.getLogger(__name__)


class TransformersLLM:
    def __init__(self, model: str | None, *, device: str | None = None, dtype: str = "auto", max_model_len: int = 4096, batch_size: int = 16, seed: int = 0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = resolve_model(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = torch.float32 if (dtype == "auto" and self.device == "cpu") else (getattr(torch, dtype) if dtype != "auto" else "auto")
        try:
            self._tok = AutoTokenizer.from_pretrained(self.name)
            self.model = AutoModelForCausalLM.from_pretrained(self.name, dtype=torch_dtype).to(self.device).eval()
        except Exception as exc:
            raise BackendError(f"transformers could not load '{self.name}': {type(exc).__name__}: {exc}") from exc
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        self._tok.padding_side = "left"
        self.max_model_len = max_model_len
        self.batch_size = batch_size
        self.seed = seed

    @property
    def tokenizer(self) -> Any:
        return self._tok

    def chat(self, chats: Sequence[Chat], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None, continue_final_message: bool = False) -> list[Output]:
        texts = [self._tok.apply_chat_template(list(c), tokenize=False, add_generation_prompt=not continue_final_message, continue_final_message=continue_final_message) for c in chats]
        return self.generate(texts, sampling, seeds=seeds)

    def generate(self, prompts: Sequence[str], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None) -> list[Output]:
        import torch

        s = check_sampling(sampling)
        so = s.pop("structured_outputs", None) or {}
        if set(so) - {"json", "choice"}:
            raise BackendError(f"the transformers backend has no {'/'.join(sorted(set(so) - {'json', 'choice'}))} structured output", hint="use json or choice, or backend: vllm")
        if "json" in so:
            return self._json_by_prefill(prompts, s, seeds)
        enc = self._tok(list(prompts), add_special_tokens=False)["input_ids"] if prompts else []
        results: list[Output | None] = [None] * len(enc)
        todo = []
        for i, ids in enumerate(enc):
            if len(ids) + 1 > self.max_model_len:
                results[i] = Output(error=f"prompt_too_long: {len(ids)} tokens, max_model_len {self.max_model_len}")
            else:
                todo.append(i)
        n = int(s.get("n", 1))
        temp = float(s.get("temperature", 1.0))
        want_lps = s.get("logprobs") is not None
        gen_kwargs: dict[str, Any] = {
            "do_sample": temp > 0,
            "num_return_sequences": n,  # n > 1 needs temperature > 0 (check_sampling)
            "pad_token_id": self._tok.pad_token_id,
            # raw logits, not the warped scores: vLLM reports the model's own logprobs too
            "output_logits": want_lps,
            "return_dict_in_generate": True,
        }
        if temp > 0:
            gen_kwargs.update(temperature=temp, top_p=float(s.get("top_p", 1.0)))
            if s.get("top_k"):
                gen_kwargs["top_k"] = int(s["top_k"])
            if s.get("min_p"):
                gen_kwargs["min_p"] = float(s["min_p"])
        if s.get("min_tokens"):
            gen_kwargs["min_new_tokens"] = int(s["min_tokens"])
        ignored = [k for k in ("presence_penalty", "frequency_penalty") if s.get(k)]
        if ignored:
            log.warning("the transformers backend ignores %s (vLLM-only sampling options)", ", ".join(ignored))
        if seeds is None and s.get("seed") is not None:
            seeds = [int(s["seed"])] * len(enc)  # vLLM seeds every request with it
        if s.get("repetition_penalty"):
            gen_kwargs["repetition_penalty"] = float(s["repetition_penalty"])
        stop_ids = set(s.get("stop_token_ids") or [])
        if self._tok.eos_token_id is not None:
            stop_ids.add(self._tok.eos_token_id)
        gen_kwargs["eos_token_id"] = sorted(stop_ids)
        stops = list(s.get("stop") or [])
        max_new = int(s.get("max_tokens") or 16)
        if "choice" in so:
            eos = self._tok.eos_token_id
            if eos is None:
                raise BackendError("choice structured output needs a tokenizer with an eos token")
            choices = [tuple(self._tok(str(c), add_special_tokens=False)["input_ids"]) for c in so["choice"]]
            gen_kwargs["eos_token_id"] = [eos]  # a finished choice ends with eos, and only then
            max_new = max(len(c) for c in choices) + 1
        order = sorted(todo, key=lambda i: len(enc[i]))  # length-sorted batches waste less padding
        # A shared batch draws from one RNG stream, so a row's sample would depend on its
        # neighbours: with per-request seeds every request runs alone, seeded with its own seed.
        size = 1 if seeds is not None else self.batch_size
        for b in range(0, len(order), size):
            idx = order[b : b + size]
            torch.manual_seed(self.seed if seeds is None else int(seeds[idx[0]]))
            batch = self._tok.pad({"input_ids": [enc[i] for i in idx]}, return_tensors="pt").to(self.device)
            room = self.max_model_len - batch["input_ids"].shape[1]
            if stops:  # stop rows early; the exact cut (and stop_reason) is still made in _decode
                gen_kwargs["stopping_criteria"] = [_StopOnStrings(self._tok, stops, batch["input_ids"].shape[1], s.get("skip_special_tokens", True))]
            if "choice" in so:
                gen_kwargs["prefix_allowed_tokens_fn"] = _ChoiceTrie(choices, eos, batch["input_ids"].shape[1])
            with torch.no_grad():
                out = self.model.generate(**batch, max_new_tokens=max(1, min(max_new, room)), **gen_kwargs)
            new = out.sequences[:, batch["input_ids"].shape[1] :]
            for j, i in enumerate(idx):
                results[i] = Output([self._decode(new[j * n + k].tolist(), stop_ids, stops, s, out.logits if want_lps else None, j * n + k, gen_kwargs.get("prefix_allowed_tokens_fn")) for k in range(n)])
        return results  # type: ignore[return-value]

    def _json_by_prefill(self, prompts: Sequence[str], s: dict[str, Any], seeds: Sequence[int] | None) -> list[Output]:
        """JSON output the way Magpie tags: prefill ``{``, stop at ``}`` (kept), return ``{...}``."""
        stops = ["}", *(x for x in (s.get("stop") or []) if x != "}")]
        outs = self.generate([p + "{" for p in prompts], {**s, "stop": stops, "include_stop_str_in_output": True}, seeds=seeds)
        return [o if o.error else Output([replace(c, text="{" + c.text) for c in o.completions]) for o in outs]

    def _decode(self, ids: list[int], stop_ids: set[int], stops: list[str], s: dict[str, Any], logits: Any, row: int, trie: _ChoiceTrie | None = None) -> Completion:
        """One generated row as vLLM reports it: token_ids run through the stop token (or the
        token that completed a stop string), the text stops before it unless
        ``include_stop_str_in_output``, and logprobs cover exactly token_ids. Under a choice
        constraint the logprobs are over the allowed tokens, as vLLM masks the logits with
        the grammar before it computes them."""
        import torch

        skip = s.get("skip_special_tokens", True)
        include = bool(s.get("include_stop_str_in_output"))
        finish, stop_reason, body = "length", None, ids
        for pos, t in enumerate(ids):
            if t in stop_ids:
                is_eos = t == self._tok.eos_token_id
                ids, body = ids[: pos + 1], ids[: pos + (1 if include and not is_eos else 0)]
                finish, stop_reason = "stop", (None if is_eos else t)
                break
        text = self._tok.decode(body, skip_special_tokens=skip)
        # like vLLM's incremental check: the stop string whose first occurrence ends first wins
        hits = [(cut + len(st), cut, st) for st in stops if (cut := text.find(st)) >= 0]
        if hits:
            end, cut, st = min(hits)
            text = text[: end if include else cut]
            finish, stop_reason = "stop", st
            ids = ids[: self._tokens_through(ids, st, skip)]
        lps = None
        if logits is not None:
            k = int(s["logprobs"])
            lps = []
            for pos in range(len(ids)):
                raw = logits[pos][row].float()
                if trie is not None:
                    allowed = torch.tensor(trie.allowed(tuple(ids[:pos])), device=raw.device)
                    raw = torch.full_like(raw, float("-inf")).index_copy(0, allowed, raw[allowed])
                logp = torch.log_softmax(raw, dim=-1)
                top = torch.topk(logp, k)
                d = {self._tok.decode([int(t)]): float(v) for v, t in zip(top.values, top.indices) if v > float("-inf")}
                d.setdefault(self._tok.decode([ids[pos]]), float(logp[ids[pos]]))
                lps.append(d)
        return Completion(text=text, finish_reason=finish, stop_reason=stop_reason, token_ids=tuple(ids), logprobs=lps)

    def _tokens_through(self, ids: list[int], stop: str, skip: bool) -> int:
        """The fewest leading tokens whose text contains ``stop`` (binary search on decodes)."""
        lo, hi = 1, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if stop in self._tok.decode(ids[:mid], skip_special_tokens=skip):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def hidden_states(self, texts: Sequence[str], *, layer: int = -1) -> list[Any]:
        """Per text, the [seq_len, hidden] states of ``layer`` (last by default), float32 on CPU."""
        import torch

        outs = []
        for t in texts:
            ids = self._tok(t, add_special_tokens=False, return_tensors="pt").to(self.device)
            with torch.no_grad():
                h = self.model(**ids, output_hidden_states=True).hidden_states[layer][0]
            outs.append(h.float().cpu())
        return outs


class _ChoiceTrie:
    """``prefix_allowed_tokens_fn`` for ``choice`` output: after the generated prefix, the
    next tokens of the choices that extend it, and eos once a whole choice is written."""

    def __init__(self, choices: list[tuple[int, ...]], eos: int, start: int) -> None:
        self.eos, self.start = eos, start
        self.next: dict[tuple[int, ...], set[int]] = {}
        for c in choices:
            for k in range(len(c)):
                self.next.setdefault(c[:k], set()).add(c[k])
            self.next.setdefault(c, set()).add(eos)

    def allowed(self, prefix: tuple[int, ...]) -> list[int]:
        return sorted(self.next.get(prefix, {self.eos}))

    def __call__(self, batch_id: int, input_ids: Any) -> list[int]:
        return self.allowed(tuple(input_ids[self.start :].tolist()))


class _StopOnStrings:
    """Per-row early stop on stop strings, checking only the last few generated tokens.

    transformers' own ``stop_strings`` builds a ``StopStringCriteria`` that preprocesses
    the whole vocabulary on every ``generate`` call (5-8 s for SmolLM2's 49k tokens on
    2 cores, more than the decoding it saves); decoding a short tail per step is cheap.
    A stop string of L characters spans at most L tokens, so a window of L + 3 suffices.
    """

    def __init__(self, tok: Any, stops: list[str], start: int, skip_special_tokens: bool) -> None:
        self.tok, self.stops, self.start, self.skip = tok, stops, start, skip_special_tokens
        self.window = max(len(st) for st in stops) + 3

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        tails = input_ids[:, self.start :][:, -self.window :].tolist()
        texts = self.tok.batch_decode(tails, skip_special_tokens=self.skip)
        return torch.tensor([any(st in t for st in self.stops) for t in texts], dtype=torch.bool, device=input_ids.device)
