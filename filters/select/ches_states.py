"""Last-layer hidden states for CHES, run where the engine lives.

These are module-level functions ``fn(llm, ...)`` for
:func:`synth.backends.llm.call_in_engine`: ``llm`` is a
:class:`synth.backends.transformers.TransformersLLM` (``.model``, ``.tokenizer``,
``.device``); arguments and results are plain lists and numpy arrays, so the engine can sit
in its own worker process. The maths is :mod:`filters.select.ches_math`.

Tokens. A pair is encoded as TRL's ``DPOTrainer`` encodes it: the prompt and each response
are tokenized **separately** and concatenated, so the last prompt token is known exactly
(tokenizing ``prompt + response`` as one string, as the reference script does, can merge
tokens across the boundary and shift it by one). With a chat template the prompt is
``apply_chat_template(prompt, add_generation_prompt=True)`` (its special tokens included,
``add_special_tokens=False``) and a one-message response is its content; a several-message
response is the template's continuation after the prompt. Without a chat template a string
prompt is used as is and a message list becomes an HH-style ``"\\n\\nHuman: ...
\\n\\nAssistant:"`` transcript, with the tokenizer's own special tokens (BOS); the
reference instead adds untrained ``<|prompter|>``/``<|assistant|>`` tokens to the
vocabulary, which changes the model being scored. prompt + response is truncated to
``max_length`` tokens from the right (the reference's ``--max_input_length 512``): the
response is cut; a prompt of ``max_length`` tokens or more leaves no response
(``prompt_too_long``). No end-of-turn/EOS token is appended: the summed positions end at
the last response token, whose state predicts EOS (see :mod:`filters.select.ches_math`).

Batches. The sequences of up to ``chunk_pairs`` pairs are sorted by length and packed up to
``batch_tokens`` padded tokens per forward pass (on CPU, where a big batch buys nothing,
padding is the cost to avoid: one padded batch of pairs ran 0.73x the unpadded per-example
loop); only the per-sequence sums are kept, ``2 x chunk_pairs x hidden`` floats at most.
Sequences are right-padded with an attention mask, which
leaves every real position's state as it is unpadded (causal attention: a real token
never sees the padding after it). The model's backbone is called directly
(``last_hidden_state`` is ``hidden_states[-1]``, the unembedding's input) so neither the
logits over the vocabulary nor the other layers' states are materialised. States are
summed in float32 whatever the model's dtype (bf16 on GPU), and the sums go to float64
for the scores. A pair whose chosen and rejected tokens are identical is computed once:
its CHES is exactly 0.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from filters.select.ches_math import ches_from_sums, ches_reference, position_mask

if TYPE_CHECKING:
    from synth.backends.transformers import TransformersLLM

__all__ = ["encode_pairs", "pair_scores", "reference_pair_scores", "render_pair"]

log = logging.getLogger(__name__)

Message = dict[str, str]


def _transcript(msgs: list[Message]) -> str:
    return "".join(f"\n\n{'Assistant' if m['role'] == 'assistant' else 'Human'}: {m['content']}" for m in msgs)


def render_pair(tokenizer: Any, prompt: str | list[Message], chosen: str | list[Message], rejected: str | list[Message]) -> tuple[str, str, str]:
    """The prompt text and the two response texts, as the model will read them.

    Raises ``ValueError("template_mismatch")`` when a several-message response does not
    continue the rendered prompt (a template that rewrites earlier turns).
    """
    if tokenizer.chat_template:
        msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
        prompt_text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

        def response(r: str | list[Message]) -> str:
            if isinstance(r, str):
                return r
            if len(r) == 1:
                return r[0]["content"]
            full = tokenizer.apply_chat_template(msgs + [dict(m) for m in r], tokenize=False, continue_final_message=True)
            if not full.startswith(prompt_text):
                raise ValueError("template_mismatch")
            return full[len(prompt_text) :]
    else:
        # a string prompt is TRL's standard format: prompt + response as written; a
        # conversation becomes a transcript whose last "Assistant:" the response follows
        lead = "" if isinstance(prompt, str) else " "
        prompt_text = prompt if isinstance(prompt, str) else _transcript(list(prompt)) + "\n\nAssistant:"

        def response(r: str | list[Message]) -> str:
            if isinstance(r, str):
                return lead + r
            return lead + r[0]["content"] + _transcript(list(r[1:]))

    return prompt_text, response(chosen), response(rejected)


def encode_pairs(tokenizer: Any, prompts: list[Any], chosen: list[Any], rejected: list[Any], *, max_length: int) -> dict[str, Any]:
    """Token ids of every pair: ``prompt``, ``chosen``, ``rejected`` (responses truncated so
    prompt + response <= ``max_length``) and ``error`` (``None`` or a reason:
    ``template_mismatch``, ``empty_prompt``, ``empty_response``, ``prompt_too_long``)."""
    n = len(prompts)
    errors: list[str | None] = [None] * n
    texts: list[tuple[str, str, str]] = []
    for i, (p, c, r) in enumerate(zip(prompts, chosen, rejected)):
        try:
            texts.append(render_pair(tokenizer, p, c, r))
        except ValueError as exc:
            errors[i] = str(exc)
            texts.append(("", "", ""))
    special = not tokenizer.chat_template  # a template writes its own special tokens
    p_ids = tokenizer([t[0] for t in texts], add_special_tokens=special)["input_ids"] if n else []
    c_ids = tokenizer([t[1] for t in texts], add_special_tokens=False)["input_ids"] if n else []
    r_ids = tokenizer([t[2] for t in texts], add_special_tokens=False)["input_ids"] if n else []
    for i in range(n):
        if errors[i] is not None:
            continue
        room = max_length - len(p_ids[i])
        if not p_ids[i]:
            errors[i] = "empty_prompt"
        elif not c_ids[i] or not r_ids[i] or not texts[i][1].strip() or not texts[i][2].strip():
            errors[i] = "empty_response"
        elif room < 1:
            errors[i] = "prompt_too_long"
        else:
            c_ids[i], r_ids[i] = c_ids[i][:room], r_ids[i][:room]
    return {"prompt": p_ids, "chosen": c_ids, "rejected": r_ids, "error": errors}


def _backbone(model: Any) -> Any:
    """The decoder without its LM head (``LlamaForCausalLM.model``), or None."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    return base if base is not None and base is not model else None


def _last_hidden(model: Any, input_ids: Any, attention_mask: Any) -> Any:
    base = _backbone(model)
    if base is not None:
        return base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[-1]


def _batches(widths: list[int], batch_tokens: int) -> list[list[int]]:
    """Consecutive groups of sequences (sorted by width) with rows x width <= budget.

    >>> _batches([2, 3, 3, 5, 9], 10)
    [[0, 1, 2], [3], [4]]
    """
    out: list[list[int]] = []
    cur: list[int] = []
    for k, w in enumerate(widths):
        if cur and (len(cur) + 1) * w > batch_tokens:
            out.append(cur)
            cur = []
        cur.append(k)
    if cur:
        out.append(cur)
    return out


def _sequence_sums(model: Any, device: Any, seqs: list[list[int]], plens: list[int], pad: int, batch_tokens: int) -> np.ndarray:
    """S for every sequence, float64 ``(len(seqs), hidden)``: length-sorted, right-padded
    batches through the backbone, the masked sum taken on the device in float32."""
    import torch

    lens = np.array([len(s) for s in seqs])
    order = np.argsort(lens, kind="stable")
    sums: np.ndarray | None = None
    for group in _batches(lens[order].tolist(), batch_tokens):
        rows = order[group]
        w = int(lens[rows].max())
        ids = torch.full((len(rows), w), pad, dtype=torch.long)
        attn = torch.zeros((len(rows), w), dtype=torch.long)
        for j, r in enumerate(rows.tolist()):
            ids[j, : lens[r]] = torch.tensor(seqs[r], dtype=torch.long)
            attn[j, : lens[r]] = 1
        mask = torch.from_numpy(position_mask(np.array(plens)[rows], lens[rows], w).astype(np.float32)).to(device)
        with torch.inference_mode():
            h = _last_hidden(model, ids.to(device), attn.to(device))
            part = torch.einsum("bt,bth->bh", mask, h.float()).double().cpu().numpy()
        if sums is None:
            sums = np.empty((len(seqs), part.shape[1]))
        sums[rows] = part
    assert sums is not None
    return sums


def pair_scores(llm: TransformersLLM, prompts: list[Any], chosen: list[Any], rejected: list[Any], *, max_length: int = 512, batch_tokens: int | None = None, chunk_pairs: int = 1024) -> dict[str, Any]:
    """CHES and LN-CHES of every pair, batched.

    Parameters
    ----------
    llm
        The engine (a ``TransformersLLM``): the policy model that DPO will train.
    prompts, chosen, rejected
        Per pair: a prompt (string or message list) and two responses (strings or
        message lists).
    max_length
        Tokens of prompt + response kept (the reference's 512).
    batch_tokens
        Padded tokens per forward pass (rows x width); default 2048 on CPU (big batches
        buy nothing there, padding costs) and 32768 on a GPU.
    chunk_pairs
        Pairs whose sequences are length-sorted together; bounds the memory held for
        their sums (``2 x chunk_pairs x hidden`` floats).

    Returns
    -------
    dict
        ``ches``, ``ln_ches`` (float64, NaN where ``error``), ``n_chosen``,
        ``n_rejected`` (positions summed), ``error`` (list of ``None`` or a reason) and
        ``tokens`` (real tokens run through the model).
    """
    tok, model, device = llm.tokenizer, llm.model, llm.device
    if batch_tokens is None:
        batch_tokens = 2048 if str(device) == "cpu" else 32768
    enc = encode_pairs(tok, prompts, chosen, rejected, max_length=max_length)
    n = len(prompts)
    ches = np.full(n, np.nan)
    ln_ches = np.full(n, np.nan)
    n_c = np.zeros(n, dtype=np.int64)
    n_r = np.zeros(n, dtype=np.int64)
    valid = [i for i in range(n) if enc["error"][i] is None]
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    tokens = 0
    log.info("CHES: %d pairs (%d unscorable), batches of <= %d tokens", len(valid), n - len(valid), batch_tokens)
    for start in range(0, len(valid), chunk_pairs):
        idx = valid[start : start + chunk_pairs]
        seqs: list[list[int]] = []
        plens: list[int] = []
        ci: list[int] = []
        ri: list[int] = []
        for i in idx:
            p = enc["prompt"][i]
            ci.append(len(seqs))
            seqs.append(p + enc["chosen"][i])
            plens.append(len(p))
            if enc["chosen"][i] == enc["rejected"][i]:
                ri.append(ci[-1])  # identical responses: one pass, and CHES exactly 0
            else:
                ri.append(len(seqs))
                seqs.append(p + enc["rejected"][i])
                plens.append(len(p))
        sums = _sequence_sums(model, device, seqs, plens, pad, batch_tokens)
        counts = np.array([len(s) for s in seqs]) - np.array(plens) + 1
        ches[idx], ln_ches[idx] = ches_from_sums(sums[ci], sums[ri], counts[ci], counts[ri])
        n_c[idx], n_r[idx] = counts[ci], counts[ri]
        tokens += sum(len(s) for s in seqs)
    return {"ches": ches, "ln_ches": ln_ches, "n_chosen": n_c, "n_rejected": n_r, "error": enc["error"], "tokens": tokens}


def reference_pair_scores(llm: TransformersLLM, prompt: Any, chosen: Any, rejected: Any, *, max_length: int = 512) -> tuple[float, float]:
    """CHES and LN-CHES of one pair the way the reference per-example script computes them:
    one unpadded sequence per response through the full model with
    ``output_hidden_states=True``, ``hidden_states[-1][0][query_len - 1:]`` summed, the
    paper's formula (:func:`~filters.select.ches_math.ches_reference`).

    The baseline :func:`pair_scores` is tested and benchmarked against; same tokens
    (:func:`encode_pairs`). Raises ``ValueError`` with the reason for an unscorable pair.
    """
    import torch

    enc = encode_pairs(llm.tokenizer, [prompt], [chosen], [rejected], max_length=max_length)
    if enc["error"][0] is not None:
        raise ValueError(enc["error"][0])
    p = enc["prompt"][0]
    states = []
    for resp in (enc["chosen"][0], enc["rejected"][0]):
        ids = torch.tensor([p + resp], dtype=torch.long, device=llm.device)
        with torch.no_grad():
            states.append(llm.model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0].float().cpu().numpy())
    return ches_reference(states[0], states[1], len(p), len(p))
