"""OpenAI-compatible server backend (``vllm serve``, llama.cpp server, hosted APIs).

Raw prompts go to the completions endpoint, chats to the chat endpoint. Requests run in a
bounded thread pool; the official client retries 429/5xx/timeouts with exponential backoff
(``max_retries``, 0.5 s doubling to 8 s). A request still timing out or answered 429/5xx
after its retries is that row's error, ``server_error: ...``, which the stage turns into a
rejected row: one overloaded moment must not stop a run of thousands of rows. A server that
cannot be reached at all, a wrong model name or a refused key is a ``BackendError`` naming
the URL: every row would fail the same way.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipelines.errors import BackendError, MissingDependencyError
from synth.backends.llm import Chat, Completion, Output, check_sampling

log = logging.getLogger(__name__)


class OpenAILLM:
    def __init__(self, model: str | None, *, base_url: str = "http://127.0.0.1:8000/v1", api_key: str | None = None, api_key_env: str | None = None, max_concurrency: int = 32, max_retries: int = 5, timeout: float = 600.0, tokenizer: str | None = None) -> None:
        try:
            import openai
        except ImportError as exc:
            raise MissingDependencyError("openai", purpose="the openai backend") from exc
        self._openai = openai
        if api_key_env and not os.environ.get(api_key_env):
            # recipes name the variable (api_key_env), never the key: the key is never written
            raise BackendError(f"api_key_env names ${api_key_env}, which is not set", hint=f"export {api_key_env}=... before the run")
        api_key = api_key or (os.environ[api_key_env] if api_key_env else os.environ.get("OPENAI_API_KEY", "EMPTY"))
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=max_retries, timeout=timeout)
        self.base_url = base_url
        self.max_concurrency = max_concurrency
        self._answered = False  # a server that never answered is a configuration error, not a row's
        # one bound for the server, however many shards call at once (the executor has several in flight)
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self.name = model or self._first_model()
        self._tokenizer_name = tokenizer
        self._tok: Any = None

    def _first_model(self) -> str:
        try:
            return self.client.models.list().data[0].id
        except self._openai.APIConnectionError as exc:
            if self._answered:
                # it answered earlier in this run and died since: these rows are rejected after the
                # retries, the run finishes (a rerun with --fresh or a new --out retries them)
                return None, f"server_error: connection lost after {self.client.max_retries} retries: {str(exc)[:200]}"
            raise BackendError(f"cannot reach the server at {self.base_url}", hint="start it (e.g. `vllm serve MODEL`) or fix base_url") from exc

    @property
    def tokenizer(self) -> Any:
        """The served model's tokenizer (loaded once; ``tokenizer=`` when the served name is not a path)."""
        if self._tok is None:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self._tokenizer_name or self.name)
        return self._tok

    def generate(self, prompts: Sequence[str], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None) -> list[Output]:
        return self._map(lambda i, p: self._complete(p, sampling, seeds[i] if seeds is not None else None), prompts)

    def chat(self, chats: Sequence[Chat], sampling: dict[str, Any], *, seeds: Sequence[int] | None = None, continue_final_message: bool = False) -> list[Output]:
        return self._map(lambda i, c: self._chat(c, sampling, seeds[i] if seeds is not None else None, continue_final_message), chats)

    # -- internals -----------------------------------------------------------------
    def _map(self, fn: Any, items: Sequence[Any]) -> list[Output]:
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_concurrency, len(items) or 1))) as pool:
            outs = list(pool.map(lambda a: self._bounded(fn, *a), enumerate(items)))
        failed = sum(1 for o in outs if o.error and o.error.startswith("server_error"))
        if failed:
            log.warning("%d of %d requests to %s failed after %d retries (server_error): those rows are rejected", failed, len(outs), self.base_url, self.client.max_retries)
        return outs

    def _bounded(self, fn: Any, *args: Any) -> Output:
        with self._slots:
            return fn(*args)

    def _kwargs(self, sampling: dict[str, Any], seed: int | None) -> dict[str, Any]:
        s = check_sampling(sampling)
        kw: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k in ("n", "temperature", "top_p", "max_tokens", "stop", "presence_penalty", "frequency_penalty", "seed"):
            if k in s and s[k] is not None:
                kw[k] = s[k]
        if seed is not None:
            kw["seed"] = int(seed)
        for k in ("top_k", "min_p", "repetition_penalty", "stop_token_ids", "skip_special_tokens", "include_stop_str_in_output", "min_tokens", "structured_outputs"):
            if k in s and s[k] is not None:
                extra[k] = s[k]  # vLLM's server reads these from the request body
        if extra:
            kw["extra_body"] = extra
        return kw

    def _call(self, fn: Any, **kw: Any) -> Any:
        try:
            out = fn(**kw)
            self._answered = True
            return out, None
        except self._openai.APITimeoutError:  # a subclass of APIConnectionError: caught first
            return None, f"server_error: timeout after {self.client.max_retries} retries ({self.client.timeout} s each)"
        except self._openai.APIConnectionError as exc:
            if self._answered:
                # it answered earlier in this run and died since: these rows are rejected after the
                # retries, the run finishes (a rerun with --fresh or a new --out retries them)
                return None, f"server_error: connection lost after {self.client.max_retries} retries: {str(exc)[:200]}"
            raise BackendError(f"cannot reach the server at {self.base_url}: {exc}", hint="is the server running? check base_url") from exc
        except self._openai.BadRequestError as exc:
            msg = str(exc)
            if "context length" in msg or "maximum context" in msg or "too long" in msg:
                return None, "prompt_too_long: " + msg[:200]
            return None, "bad_request: " + msg[:200]
        except self._openai.NotFoundError as exc:
            raise BackendError(f"the server at {self.base_url} does not serve model '{self.name}': {exc}", hint="check model: (GET /v1/models lists the served names), or leave it empty to use the first one") from exc
        except self._openai.APIStatusError as exc:
            if exc.status_code == 429 or exc.status_code >= 500:  # overloaded or failing: this row, after the retries
                return None, f"server_error: HTTP {exc.status_code} after {self.client.max_retries} retries: {str(exc)[:200]}"
            # 401/403 and the like: the configuration, not the row, is at fault
            raise BackendError(f"the server at {self.base_url} answered HTTP {exc.status_code}: {exc}", hint="check the server log, api_key and max_retries") from exc

    def _complete(self, prompt: str, sampling: dict[str, Any], seed: int | None) -> Output:
        kw = self._kwargs(sampling, seed)
        if sampling.get("logprobs"):
            kw["logprobs"] = int(sampling["logprobs"])
        resp, err = self._call(self.client.completions.create, model=self.name, prompt=prompt, **kw)
        if err:
            return Output(error=err)
        comps = []
        for ch in resp.choices:
            lps = None
            if ch.logprobs is not None and ch.logprobs.top_logprobs:
                lps = [dict(d or {}) for d in ch.logprobs.top_logprobs]
            comps.append(Completion(text=ch.text, finish_reason=ch.finish_reason, stop_reason=getattr(ch, "stop_reason", None), logprobs=lps))
        return Output(comps)

    def _chat(self, chat: Chat, sampling: dict[str, Any], seed: int | None, continue_final_message: bool) -> Output:
        kw = self._kwargs(sampling, seed)
        if sampling.get("logprobs"):
            kw["logprobs"] = True
            kw["top_logprobs"] = int(sampling["logprobs"])
        if continue_final_message:
            kw.setdefault("extra_body", {}).update(continue_final_message=True, add_generation_prompt=False)
        resp, err = self._call(self.client.chat.completions.create, model=self.name, messages=list(chat), **kw)
        if err:
            return Output(error=err)
        comps = []
        for ch in resp.choices:
            lps = None
            if ch.logprobs is not None and ch.logprobs.content:
                lps = [{t.token: t.logprob for t in (pos.top_logprobs or [])} | {pos.token: pos.logprob} for pos in ch.logprobs.content]
            comps.append(Completion(text=ch.message.content or "", finish_reason=ch.finish_reason, stop_reason=getattr(ch, "stop_reason", None), logprobs=lps))
        return Output(comps)
