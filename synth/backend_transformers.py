"""transformers backend: CPU or CUDA, the fallback when vLLM is absent, and the source
of hidden states (CHES needs the last-layer states that vLLM does not expose)."""
from __future__ import annotations

import logging
from typing import Any, Sequence

from pipelines.errors import BackendError
from synth.llm import Chat, Completion, Output, check_sampling
from synth.models import resolve_model

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
        except Exception as exc:  # noqa: BLE001
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
        if s.get("structured_outputs"):
            raise BackendError("the transformers backend has no structured output", hint="use backend: vllm, or an OpenAI-compatible server that supports it")
        enc = self._tok(list(prompts), add_special_tokens=False)["input_ids"]
        results: list[Output | None] = [None] * len(enc)
        todo = []
        for i, ids in enumerate(enc):
            if len(ids) + 1 > self.max_model_len:
                results[i] = Output(error=f"prompt_too_long: {len(ids)} tokens, max_model_len {self.max_model_len}")
            else:
                todo.append(i)
        n = int(s.get("n", 1))
        temp = float(s.get("temperature", 1.0))
        gen_kwargs: dict[str, Any] = dict(
            max_new_tokens=int(s.get("max_tokens") or 16),
            do_sample=temp > 0,
            num_return_sequences=n,
            pad_token_id=self._tok.pad_token_id,
            output_scores=bool(s.get("logprobs")),
            return_dict_in_generate=True,
        )
        if temp > 0:
            gen_kwargs.update(temperature=temp, top_p=float(s.get("top_p", 1.0)))
            if s.get("top_k"):
                gen_kwargs["top_k"] = int(s["top_k"])
        if s.get("repetition_penalty"):
            gen_kwargs["repetition_penalty"] = float(s["repetition_penalty"])
        stop_ids = set(s.get("stop_token_ids") or [])
        if self._tok.eos_token_id is not None:
            stop_ids.add(self._tok.eos_token_id)
        gen_kwargs["eos_token_id"] = sorted(stop_ids)
        stops = list(s.get("stop") or [])
        order = sorted(todo, key=lambda i: len(enc[i]))  # length-sorted batches waste less padding
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            torch.manual_seed(self.seed if seeds is None else int(seeds[idx[0]]))
            batch = self._tok.pad({"input_ids": [enc[i] for i in idx]}, return_tensors="pt").to(self.device)
            with torch.no_grad():
                out = self.model.generate(**batch, **gen_kwargs)
            new = out.sequences[:, batch["input_ids"].shape[1] :]
            for j, i in enumerate(idx):
                comps = []
                for k in range(n):
                    row = j * n + k
                    comps.append(self._decode(new[row].tolist(), stop_ids, stops, s, out.scores if s.get("logprobs") else None, row))
                results[i] = Output(comps)
        return results  # type: ignore[return-value]

    def _decode(self, ids: list[int], stop_ids: set[int], stops: list[str], s: dict[str, Any], scores: Any, row: int) -> Completion:
        import torch

        finish, stop_reason = "length", None
        for pos, t in enumerate(ids):
            if t in stop_ids:
                ids, finish, stop_reason = ids[:pos], "stop", (None if t == self._tok.eos_token_id else t)
                break
        text = self._tok.decode(ids, skip_special_tokens=s.get("skip_special_tokens", True))
        for st in stops:
            cut = text.find(st)
            if cut >= 0:
                text = text[: cut + (len(st) if s.get("include_stop_str_in_output") else 0)]
                finish, stop_reason = "stop", st
        lps = None
        if scores is not None:
            k = int(s["logprobs"])
            lps = []
            for pos in range(len(ids)):
                logp = torch.log_softmax(scores[pos][row].float(), dim=-1)
                top = torch.topk(logp, k)
                d = {self._tok.decode([int(t)]): float(v) for v, t in zip(top.values, top.indices)}
                d.setdefault(self._tok.decode([ids[pos]]), float(logp[ids[pos]]))
                lps.append(d)
        return Completion(text=text, finish_reason=finish, stop_reason=stop_reason, token_ids=tuple(ids), logprobs=lps)

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
