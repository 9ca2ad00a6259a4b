"""Magpie pre-query templates, derived from a model's own chat template.

Magpie (Xu et al., ICLR 2025) feeds an aligned model only the left part of its chat template,
up to where the user's text would start, and lets the model write the user query itself.
The reference repo (``magpie-align/magpie``, ``configs/model_configs.json``) hard-codes that
string per model; here it is *derived*: the chat template renders a conversation whose user
content is a sentinel, and the text is cut right before the sentinel. That works for any model
with a chat template and cannot drift from what the model saw in training.

Differences from the published strings (pinned by ``tests/synth/test_magpie_template.py``):

* Llama-3.1 and Qwen2 templates inject a default system block when no system message is given
  (``Cutting Knowledge Date...`` / ``You are a helpful assistant.``). Magpie's published
  pre-queries for those models drop it; Qwen2.5's keeps it. ``keep_default_system=True`` (the
  default here) keeps what the template renders; ``keep_default_system=False`` gives Magpie's
  strings; :func:`default_system_choice` picks Magpie's choice per family (what the
  ``magpie_instructions`` stage does unless told).
* Phi-3, Mistral and Llama-2 strings in Magpie read ``<s> <|user|>`` / ``<s> [INST] ``: the
  space after ``<s>`` is a SentencePiece decode artifact, not in the template. Encoded, it
  becomes an extra token the model never saw after BOS. The derived string has no space.
* Gemma-2's published string ends ``user\\n\\n``; the template renders ``user\\n``.

The result is template *text*. It already holds BOS where the template writes one, so encode it
with ``add_special_tokens=False`` (as ``apply_chat_template`` does); a raw string passed to
``vllm.LLM.generate`` is encoded with special tokens and gets a second BOS.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.errors import ConfigError
from synth.magpie.render import (
    ASSISTANT,
    SYSTEM,
    USER,
    USER2,
    cut_before,
    render,
    template_bos,
    token_boundary,
)
from synth.magpie.system_prompts import MT_SYSTEM_PROMPT

__all__ = [
    "DEFAULT_SYSTEM_RULES",
    "default_system_choice",
    "mt_append_template",
    "mt_pre_query_template",
    "pre_query_template",
    "stop_strings",
]

# Turn/sequence terminators that are stop tokens whenever the vocabulary has them as special
# tokens, even if the template never writes them (Llama-3's <|end_of_text|>, Qwen's <|endoftext|>).
_KNOWN_TERMINATORS = frozenset({
    "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "<|end|>",
    "<end_of_turn>", "<eos>", "</s>", "<|EOT|>", "<｜end▁of▁sentence｜>",
})


# Whether Magpie's pre-query keeps the system block a template injects on its own, by a marker of
# the injected text (methods.md 1.2; magpie-align/magpie configs/model_configs.json). First match wins:
# Qwen2.5's block contains Qwen2's sentence.
DEFAULT_SYSTEM_RULES: tuple[tuple[str, bool, str], ...] = (
    ("Cutting Knowledge Date", False,
     ("Llama-3.1/3.2/3.3: Magpie's published pre-queries are Llama-3's, without the date block; "
      "the block also holds today's date, so keeping it would make the prompt change by the day")),
    ("You are Qwen, created by Alibaba Cloud", True, "Qwen2.5: Magpie's published pre-query keeps the system block"),
    ("You are a helpful assistant.", False, "Qwen2: Magpie's published pre-query drops the system block"),
)
_KEEP_UNLISTED = ("not in Magpie's table (e.g. SmolLM2): methods.md 1.2's rule for new families keeps the "
                  "injected block, the context the model saw in its chat training")


def default_system_choice(
    tokenizer_or_chat_template: Any,
    *,
    bos_token: str | None = None,
    eos_token: str | None = None,
    **template_vars: Any,
) -> tuple[bool, str]:
    """Magpie's choice of ``keep_default_system`` for a chat template, and why.

    Templates that inject nothing get ``True`` (the choice makes no difference). Otherwise the
    injected text is matched against :data:`DEFAULT_SYSTEM_RULES`: Llama-3.1's "Cutting
    Knowledge Date" block and Qwen2's "You are a helpful assistant." are dropped (Magpie's
    published strings), Qwen2.5's block is kept (Magpie's string keeps it), and a family
    Magpie does not list (SmolLM2) keeps it, methods.md 1.2's general rule.

    Examples
    --------
    >>> qwen2 = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n{% endif %}"
    ...          "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}")
    >>> default_system_choice(qwen2)[0]
    False
    """
    opts: dict[str, Any] = {"bos_token": bos_token, "eos_token": eos_token, **template_vars}
    kept = pre_query_template(tokenizer_or_chat_template, keep_default_system=True, **opts)
    try:
        dropped = pre_query_template(tokenizer_or_chat_template, keep_default_system=False, **opts)
    except ConfigError:
        return True, "the injected system block cannot be separated from the user turn: kept as rendered"
    if kept == dropped:
        return True, "the template injects no system block"
    for marker, keep, why in DEFAULT_SYSTEM_RULES:
        if marker in kept:
            return keep, why
    return True, _KEEP_UNLISTED


def pre_query_template(
    tokenizer_or_chat_template: Any,
    *,
    system_prompt: str | None = None,
    keep_default_system: bool = True,
    bos_token: str | None = None,
    eos_token: str | None = None,
    **template_vars: Any,
) -> str:
    """The text a model sees right before a user message starts: Magpie's pre-query template.

    Parameters
    ----------
    tokenizer_or_chat_template
        A tokenizer with a ``chat_template`` (rendered through its ``apply_chat_template``) or
        the jinja template string itself (rendered the way transformers does).
    system_prompt
        Optional system message rendered before the user turn (e.g.
        :func:`~synth.magpie.system_prompts.control_system_prompt`). Templates that reject system messages raise ``ConfigError``.
    keep_default_system
        Keep a system block the template injects on its own (Qwen2/2.5, SmolLM2, Llama-3.1).
        ``False`` drops it (Magpie's Llama-3.1 and Qwen2 strings); with ``system_prompt`` it
        drops only the injected text inside the system turn (Llama-3.1's date lines).
        :func:`default_system_choice` gives Magpie's choice per family.
    bos_token, eos_token
        Special tokens for a raw template string (required when it uses them); with a tokenizer
        they override the tokenizer's own.
    **template_vars
        Extra template variables (``date_string=...``).

    Returns
    -------
    str
        Template text to encode with ``add_special_tokens=False``.

    Examples
    --------
    >>> llama3 = ("{% for m in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    ...           "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] + '<|eot_id|>' }}"
    ...           "{% endfor %}")
    >>> pre_query_template(llama3, bos_token="<|begin_of_text|>")
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\\n\\n'
    """
    src = tokenizer_or_chat_template
    opts = {"bos_token": bos_token, "eos_token": eos_token, "template_vars": template_vars}
    bare = cut_before(render(src, [{"role": "user", "content": USER}], add_generation_prompt=False, **opts), USER)
    if system_prompt is None:
        prefix = bare
    else:
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": USER}]
        prefix = cut_before(render(src, messages, add_generation_prompt=False, **opts), USER)
        if system_prompt.strip() and system_prompt.strip() not in prefix:
            # Phi-3's first template skips system messages without a word; don't lose it silently.
            msg = "the chat template drops the system message, so system_prompt would have no effect"
            raise ConfigError(msg, hint="use a template with a system role, or put the text in the prompt yourself")
    if keep_default_system:
        return prefix
    bos = template_bos(src, bos_token)
    opener = mt_append_template(src, bos_token=bos_token, eos_token=eos_token, **template_vars)
    # BOS leads the string only if the template writes it apart from the turn opener (SmolLM2's
    # bos_token is <|im_start|>, which is the opener's own first token).
    lead = bos if bos and bare.startswith(bos) and not opener.startswith(bos) else ""
    if bare == lead + opener:
        return prefix  # the template injects nothing: Llama-3, Gemma, Mistral, ChatML
    if not bare.endswith(opener):
        msg = f"cannot find the user-turn opener {opener!r} at the end of {bare!r}"
        raise ConfigError(msg, hint="use keep_default_system=True for this template")
    if system_prompt is None:
        return lead + opener
    # The template writes the system header, maybe its own text (Llama-3.1's date lines), then
    # ours. The header is the user opener with the role renamed; what sits between is injected.
    content = system_prompt.strip()
    at = prefix.find(content, len(lead))
    header = opener.replace("user", "system", 1) if "user" in opener else None
    head = prefix[len(lead):at]
    if header is None or head in ("", header):
        return prefix
    if head.startswith(header):
        return lead + header + prefix[at:]
    msg = f"cannot separate the template's default system text from the system header in {head!r}"
    raise ConfigError(msg, hint="use keep_default_system=True for this template")


def mt_append_template(
    tokenizer_or_chat_template: Any,
    *,
    bos_token: str | None = None,
    eos_token: str | None = None,
    **template_vars: Any,
) -> str:
    """The text that opens a new user turn right after an assistant turn has been closed.

    Magpie's multi-turn sampler renders the history with ``add_generation_prompt=False`` and
    appends this string (Llama-3: ``<|start_header_id|>user<|end_header_id|>\\n\\n``). It is the
    text between the assistant's content and the next user content, minus the assistant's own
    turn closer (``<|eot_id|>``, ``<|im_end|>\\n``, ``</s>``), which the rendered history already
    ends with. Prefer :func:`mt_pre_query_template`, which is exact for every template (Phi-3's
    current template, for one, ends a rendered history with an EOS that must not precede a turn).

    Examples
    --------
    >>> chatml = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    >>> mt_append_template(chatml)
    '<|im_start|>user\\n'
    """
    src = tokenizer_or_chat_template
    opts = {"bos_token": bos_token, "eos_token": eos_token, "template_vars": template_vars}
    u1 = {"role": "user", "content": USER}
    a1 = {"role": "assistant", "content": ASSISTANT}
    three = render(src, [u1, a1, {"role": "user", "content": USER2}], add_generation_prompt=False, **opts)
    two = render(src, [u1, a1], add_generation_prompt=False, **opts)
    between = cut_before(three[three.index(ASSISTANT) + len(ASSISTANT):], USER2)
    closer = two[two.index(ASSISTANT) + len(ASSISTANT):]
    k = 0
    while k < min(len(between), len(closer)) and between[k] == closer[k]:
        k += 1
    return between[token_boundary(between, k):]


def mt_pre_query_template(
    tokenizer_or_chat_template: Any,
    messages: Sequence[Mapping[str, str]],
    *,
    system_prompt: str | None = MT_SYSTEM_PROMPT,
    bos_token: str | None = None,
    eos_token: str | None = None,
    **template_vars: Any,
) -> str:
    """The prompt that makes the model write the next user turn of ``messages``.

    ``messages`` is the user/assistant history (ending with an assistant turn); the template
    renders it plus a sentinel user turn, cut before the sentinel. ``system_prompt`` defaults to
    Magpie's :data:`MT_SYSTEM_PROMPT`; pass ``None`` for templates without a system role (Gemma).
    """
    history = [dict(m) for m in messages]
    if not history or history[-1].get("role") != "assistant":
        msg = "messages must end with an assistant turn before sampling the next user turn"
        raise ConfigError(msg)
    if system_prompt is not None:
        history.insert(0, {"role": "system", "content": system_prompt})
    history.append({"role": "user", "content": USER})
    rendered = render(tokenizer_or_chat_template, history, add_generation_prompt=False,
                       bos_token=bos_token, eos_token=eos_token, template_vars=template_vars)
    return cut_before(rendered, USER)


def stop_strings(tokenizer: Any, *, role_words: Sequence[str] = ("assistant",)) -> tuple[list[str], list[int]]:
    """Stop strings and stop token ids for sampling a Magpie query with ``tokenizer``.

    Special tokens the chat template writes (turn ends, role headers, BOS), plus BOS/EOS and the
    known terminators in the vocabulary, ordered by id; then the literal ``role_words``. Magpie
    stops on ``"assistant"`` because Llama-3 sometimes writes the header as plain text; Qwen
    entries also stop on ``"Assistant"``. A role word also cuts a query that merely uses the word.

    Returns
    -------
    tuple[list[str], list[int]]
        ``(stop, stop_token_ids)`` for ``SamplingParams(stop=..., stop_token_ids=...)``.
    """
    from jinja2.exceptions import TemplateError

    u1 = {"role": "user", "content": USER}
    a1 = {"role": "assistant", "content": ASSISTANT}
    u2 = {"role": "user", "content": USER2}
    rendered = []
    for convo, gen in (([{"role": "system", "content": SYSTEM}, u1, a1, u2], True), ([u1, a1, u2], True), ([u1, a1], False)):
        try:
            rendered.append(tokenizer.apply_chat_template(convo, tokenize=False, add_generation_prompt=gen))
        except (TemplateError, ConfigError):
            continue  # e.g. Gemma rejects the system role; the other renders still count.
    if not rendered:
        msg = "the tokenizer's chat template renders no conversation; cannot collect stop tokens"
        raise ConfigError(msg)
    seen_ids: set[int] = set()
    for text in rendered:
        seen_ids.update(tokenizer.encode(text, add_special_tokens=False))
    special: dict[str, int] = {}
    for idx, added in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(added, "special", False):
            special[added.content] = int(idx)
    for tok in getattr(tokenizer, "all_special_tokens", []):
        if tok not in special:
            special[tok] = int(tokenizer.convert_tokens_to_ids(tok))
    always = {t for t in (tokenizer.bos_token, tokenizer.eos_token) if t} | _KNOWN_TERMINATORS
    chosen = {tok: idx for tok, idx in special.items() if idx in seen_ids or tok in always}
    unk = getattr(tokenizer, "unk_token", None)
    if unk and unk not in _KNOWN_TERMINATORS:
        chosen.pop(unk, None)  # <unk> is never sampled; SmolLM2's unk <|endoftext|> is a real end
    ordered = sorted(chosen.items(), key=lambda kv: kv[1])
    stop = [tok for tok, _ in ordered] + [w for w in role_words if w not in chosen]
    return stop, [idx for _, idx in ordered]
