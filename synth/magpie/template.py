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
  default) keeps what the template renders; ``keep_default_system=False`` gives Magpie's strings.
* Phi-3, Mistral and Llama-2 strings in Magpie read ``<s> <|user|>`` / ``<s> [INST] ``: the
  space after ``<s>`` is a SentencePiece decode artifact, not in the template. Encoded, it
  becomes an extra token the model never saw after BOS. The derived string has no space.
* Gemma-2's published string ends ``user\\n\\n``; the template renders ``user\\n``.

The result is template *text*. It already holds BOS where the template writes one, so encode it
with ``add_special_tokens=False`` (as ``apply_chat_template`` does); a raw string passed to
``vllm.LLM.generate`` is encoded with special tokens and gets a second BOS.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from pipelines.errors import ConfigError

__all__ = [
    "CHAT_SYSTEM_PROMPT",
    "CONTROL_SYSTEM_PROMPTS",
    "MT_SYSTEM_PROMPT",
    "control_system_prompt",
    "mt_append_template",
    "mt_pre_query_template",
    "pre_query_template",
    "stop_strings",
]

# Sentinels: plain ASCII, no whitespace (templates ``| trim`` content), never in a template.
_USER = "ALIGNCRAFTxSENTINELxUSERx1"
_USER2 = "ALIGNCRAFTxSENTINELxUSERx2"
_ASSISTANT = "ALIGNCRAFTxSENTINELxASSISTANTx1"
_SYSTEM = "ALIGNCRAFTxSENTINELxSYSTEMx1"

# Magpie's `pre_query_template_with_system_prompt` system turn (Llama-3.x entries).
CHAT_SYSTEM_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

# Magpie's `--control_tasks` system turns (`pre_query_template_{math,code,translation}` of the
# Llama-3/3.1 entries), kept verbatim: they steer which queries the model writes.
CONTROL_SYSTEM_PROMPTS: Mapping[str, str] = {
    "math": (
        "You are an AI assistant designed to provide helpful, step-by-step guidance on solving "
        "math problems. The user will ask you a wide range of complex mathematical questions.\n"
        "Your purpose is to assist users in understanding mathematical concepts, working through "
        "equations, and arriving at the correct solutions."
    ),
    "code": (
        "You are an AI assistant designed to provide helpful, step-by-step guidance on coding "
        "problems. The user will ask you a wide range of coding questions.\n"
        "Your purpose is to assist users in understanding coding concepts, working through code, "
        "and arriving at the correct solutions."
    ),
    "translation": (
        "You are an AI assistant specifically designed to provide accurate and contextually "
        "appropriate translations. Users will ask you to translate text between various "
        "languages.\nYour purpose is to assist users in understanding and conveying meaning "
        "across languages, maintaining the original context and nuances."
    ),
}

# `exp/gen_mt.py`'s system prompt for sampling follow-up user turns. Verbatim, typos included
# ("Al assistant", "thorough,relevant"): the released Magpie MT sets were made with this text.
MT_SYSTEM_PROMPT = (
    "You are a helpful Al assistant. The user will engage in a multi-round conversation with "
    "you, asking initial questions and following up with additional related questions. Your goal "
    "is to provide thorough,relevant and insightful responses to help the user with their queries."
)

# Turn/sequence terminators that are stop tokens whenever the vocabulary has them as special
# tokens, even if the template never writes them (Llama-3's <|end_of_text|>, Qwen's <|endoftext|>).
_KNOWN_TERMINATORS = frozenset({
    "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "<|end|>",
    "<end_of_turn>", "<eos>", "</s>", "<|EOT|>", "<｜end▁of▁sentence｜>",
})


def control_system_prompt(task: Literal["math", "code", "translation"]) -> str:
    """Magpie's domain system prompt for ``task`` (math, code or translation).

    >>> control_system_prompt("math").startswith("You are an AI assistant designed")
    True
    """
    try:
        return CONTROL_SYSTEM_PROMPTS[task]
    except KeyError:
        msg = f"unknown control task {task!r}; use one of {sorted(CONTROL_SYSTEM_PROMPTS)}"
        raise ConfigError(msg) from None


# --------------------------------------------------------------------------- rendering


def _raise_exception(message: str) -> None:
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: Any = None, sort_keys: bool = False) -> str:
    # transformers' own tojson: keeps key order and non-ASCII text, unlike jinja's built-in.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


@lru_cache(maxsize=32)
def _compile(template: str) -> tuple[Any, frozenset[str]]:
    """Compile like transformers does (sandbox, trim_blocks, lstrip_blocks, loopcontrols)."""
    import jinja2
    from jinja2 import meta, nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Generation(Extension):
        # `{% generation %}` marks assistant tokens for training masks; here it only renders.
        tags = frozenset({"generation"})

        def parse(self, parser: Any) -> list[nodes.Node]:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        names = frozenset(meta.find_undeclared_variables(env.parse(template)))
        return env.from_string(template), names
    except jinja2.TemplateSyntaxError as e:
        msg = f"the chat template does not parse: {e}"
        raise ConfigError(msg) from e


def _is_tokenizer(source: Any) -> bool:
    return not isinstance(source, str) and hasattr(source, "apply_chat_template")


def _bos(source: Any, bos_token: str | None) -> str:
    if bos_token is not None:
        return bos_token
    if _is_tokenizer(source):
        return getattr(source, "bos_token", None) or ""
    return ""


def _render(source: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool,
            bos_token: str | None, eos_token: str | None, template_vars: Mapping[str, Any]) -> str:
    """Render ``messages`` with a tokenizer's chat template or a raw jinja template string."""
    from jinja2.exceptions import TemplateError

    kwargs = dict(template_vars)
    if _is_tokenizer(source):
        if not getattr(source, "chat_template", None):
            msg = f"the tokenizer {type(source).__name__} has no chat_template; pass the template string instead"
            raise ConfigError(msg)
        for name, value in (("bos_token", bos_token), ("eos_token", eos_token)):
            if value is not None:
                kwargs[name] = value
        try:
            out = source.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs)
        except TemplateError as e:
            msg = f"the chat template refused the conversation: {e}"
            raise ConfigError(msg) from e
        return out if isinstance(out, str) else str(out)
    if not isinstance(source, str):
        msg = f"expected a tokenizer with a chat template or a jinja template string, got {type(source).__name__}"
        raise ConfigError(msg)
    compiled, names = _compile(source)
    for name, value in (("bos_token", bos_token), ("eos_token", eos_token)):
        if name in names and value is None and name not in kwargs:
            msg = f"the chat template uses {name}; pass {name}=... with a raw template string"
            raise ConfigError(msg)
    context = {"bos_token": bos_token or "", "eos_token": eos_token or "", "tools": None, "documents": None, **kwargs}
    try:
        return compiled.render(messages=messages, add_generation_prompt=add_generation_prompt, **context)
    except TemplateError as e:
        msg = f"the chat template refused the conversation: {e}"
        raise ConfigError(msg) from e


def _cut_before(rendered: str, sentinel: str) -> str:
    if rendered.count(sentinel) != 1:
        msg = "the chat template did not render the user message exactly once; cannot derive a pre-query template"
        raise ConfigError(msg, hint=f"rendered: {rendered[:200]!r}")
    return rendered[: rendered.index(sentinel)]


def _boundary(text: str, k: int) -> int:
    """Back ``k`` off to a token-safe boundary: never split ``<|end|>``/``<|user|>`` mid-way."""
    while k > 0 and not (text[k - 1] in "\n>]" or (k < len(text) and text[k] in "<[")):
        k -= 1
    return k


# --------------------------------------------------------------------------- public API


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
        :func:`control_system_prompt`). Templates that reject system messages raise ``ConfigError``.
    keep_default_system
        Keep a system block the template injects on its own (Qwen2/2.5, SmolLM2, Llama-3.1).
        ``False`` drops it (Magpie's Llama-3.1 and Qwen2 strings); with ``system_prompt`` it
        drops only the injected text inside the system turn (Llama-3.1's date lines).
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
    bare = _cut_before(_render(src, [{"role": "user", "content": _USER}], add_generation_prompt=False, **opts), _USER)
    if system_prompt is None:
        prefix = bare
    else:
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": _USER}]
        prefix = _cut_before(_render(src, messages, add_generation_prompt=False, **opts), _USER)
        if system_prompt.strip() and system_prompt.strip() not in prefix:
            # Phi-3's first template skips system messages without a word; don't lose it silently.
            msg = "the chat template drops the system message, so system_prompt would have no effect"
            raise ConfigError(msg, hint="use a template with a system role, or put the text in the prompt yourself")
    if keep_default_system:
        return prefix
    bos = _bos(src, bos_token)
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
    u1 = {"role": "user", "content": _USER}
    a1 = {"role": "assistant", "content": _ASSISTANT}
    three = _render(src, [u1, a1, {"role": "user", "content": _USER2}], add_generation_prompt=False, **opts)
    two = _render(src, [u1, a1], add_generation_prompt=False, **opts)
    between = _cut_before(three[three.index(_ASSISTANT) + len(_ASSISTANT):], _USER2)
    closer = two[two.index(_ASSISTANT) + len(_ASSISTANT):]
    k = 0
    while k < min(len(between), len(closer)) and between[k] == closer[k]:
        k += 1
    return between[_boundary(between, k):]


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
    history.append({"role": "user", "content": _USER})
    rendered = _render(tokenizer_or_chat_template, history, add_generation_prompt=False,
                       bos_token=bos_token, eos_token=eos_token, template_vars=template_vars)
    return _cut_before(rendered, _USER)


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

    u1 = {"role": "user", "content": _USER}
    a1 = {"role": "assistant", "content": _ASSISTANT}
    u2 = {"role": "user", "content": _USER2}
    rendered = []
    for convo, gen in (([{"role": "system", "content": _SYSTEM}, u1, a1, u2], True), ([u1, a1, u2], True), ([u1, a1], False)):
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
