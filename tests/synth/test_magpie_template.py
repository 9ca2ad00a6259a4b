"""Magpie pre-query templates derived from real chat templates, checked against Magpie's table.

The chat templates in ``chat_templates/`` are the ``chat_template`` strings of each model's
``tokenizer_config.json``. Each tokenizer here is a tiny byte-level BPE built offline with the
family's special tokens at their real ids, so ``apply_chat_template`` runs for real without a
download. ``MAGPIE`` holds the published strings from magpie-align/magpie
``configs/model_configs.json`` (Qwen2.5's from the spec table, methods.md 1.2).
"""
from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from pipelines.errors import ConfigError
from synth.magpie.system_prompts import (
    CHAT_SYSTEM_PROMPT,
    MT_SYSTEM_PROMPT,
    control_system_prompt,
)
from synth.magpie.template import (
    default_system_choice,
    mt_append_template,
    mt_pre_query_template,
    pre_query_template,
    stop_strings,
)

TEMPLATES = Path(__file__).parent / "chat_templates"

L3 = "<|begin_of_text|>"
HDR = "<|start_header_id|>{}<|end_header_id|>\n\n"
MAGPIE = {
    "llama3": L3 + HDR.format("user"),
    "llama3_mt_append": HDR.format("user"),
    "llama3_with_system": L3 + HDR.format("system") + CHAT_SYSTEM_PROMPT + "<|eot_id|>" + HDR.format("user"),
    "llama3_math": L3 + HDR.format("system") + (
        "You are an AI assistant designed to provide helpful, step-by-step guidance on solving math problems. "
        "The user will ask you a wide range of complex mathematical questions.\nYour purpose is to assist users "
        "in understanding mathematical concepts, working through equations, and arriving at the correct solutions."
    ) + "<|eot_id|>" + HDR.format("user"),
    "qwen2": "<|im_start|>user\n",
    "qwen2_5": "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
    "phi3": "<s> <|user|>\n",
    "gemma2": "<bos><start_of_turn>user\n\n",
    "mistral": "<s> [INST] ",
}
SMOLLM2_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
MAGPIE_STOPS = {
    "llama3": {"<|eot_id|>": 128009, "<|end_of_text|>": 128001, "<|start_header_id|>": 128006, "<|end_header_id|>": 128007},
    "qwen2": {"<|im_start|>": 151644, "<|im_end|>": 151645, "<|endoftext|>": 151643},
    "phi3": {"</s>": 2, "<s>": 1, "<unk>": 0, "<|endoftext|>": 32000, "<|user|>": 32010,
             "<|assistant|>": 32001, "<|system|>": 32006, "<|end|>": 32007},
    "gemma2": {"<eos>": 1, "<bos>": 2, "<end_of_turn>": 107},
    "mistral": {"<s>": 1, "</s>": 2, "[INST]": 3, "[/INST]": 4},
}

_LLAMA3 = {"<|begin_of_text|>": 128000, "<|end_of_text|>": 128001, "<|start_header_id|>": 128006,
           "<|end_header_id|>": 128007, "<|eot_id|>": 128009}
_QWEN = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
_PHI3 = {"<unk>": 0, "<s>": 1, "</s>": 2, "<|endoftext|>": 32000, "<|assistant|>": 32001,
         "<|system|>": 32006, "<|end|>": 32007, "<|user|>": 32010}
# template file -> (special tokens with their real ids, bos, eos, unk) from each tokenizer_config.json
FAMILIES = {
    "llama3": (_LLAMA3, L3, "<|eot_id|>", None),
    "llama3_1": ({**_LLAMA3, "<|eom_id|>": 128008}, L3, "<|eot_id|>", None),
    "qwen2": (_QWEN, None, "<|im_end|>", None),
    "qwen2_5": (_QWEN, None, "<|im_end|>", None),
    "chatml": (_QWEN, None, "<|im_end|>", None),
    "smollm2": ({"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}, "<|im_start|>", "<|im_end|>", "<|endoftext|>"),
    "phi3_mini_4k_v1": (_PHI3, "<s>", "<|endoftext|>", "<unk>"),  # template of April 2024
    "phi3_mini_4k": (_PHI3, "<s>", "<|endoftext|>", "<unk>"),  # current template (July 2024 update)
    "gemma2": ({"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<start_of_turn>": 106, "<end_of_turn>": 107},
               "<bos>", "<eos>", "<unk>"),
    "mistral_v0_3": ({"<unk>": 0, "<s>": 1, "</s>": 2, "[INST]": 3, "[/INST]": 4, "[TOOL_CALLS]": 5,
                      "[AVAILABLE_TOOLS]": 6, "[/AVAILABLE_TOOLS]": 7, "[TOOL_RESULTS]": 8, "[/TOOL_RESULTS]": 9},
                     "<s>", "</s>", "<unk>"),
}


def chat_template(name: str) -> str:
    text = (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")
    return text.removesuffix("\n")  # files end with a newline; the configs' strings don't


@cache
def tokenizer(name: str):
    """A real PreTrainedTokenizerFast: byte-level BPE, no merges, the family's special tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials, bos, eos, unk = FAMILIES[name]
    vocab = {ch: 1000 + i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab.update(specials)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    named = {k: v for k, v in (("bos_token", bos), ("eos_token", eos), ("unk_token", unk)) if v}
    tok = PreTrainedTokenizerFast(tokenizer_object=core, **named)
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in specials], special_tokens=True)
    tok.chat_template = chat_template(name)
    assert tok.convert_tokens_to_ids(list(specials)) == list(specials.values())
    return tok


def special_kwargs(name: str) -> dict[str, str]:
    _, bos, eos, _ = FAMILIES[name]
    return {"bos_token": bos or "", "eos_token": eos}


# --------------------------------------------------------------------------- pre-query


@pytest.mark.parametrize(
    ("name", "keep_default_system", "expected"),
    [
        ("llama3", True, MAGPIE["llama3"]),
        # Llama-3.1's template always writes a system block with its knowledge-cutoff date.
        # Magpie's published 3.1 string is Llama-3's; keep_default_system=False gives it.
        ("llama3_1", False, MAGPIE["llama3"]),
        ("llama3_1", True, L3 + HDR.format("system") + "Cutting Knowledge Date: December 2023\n"
         "Today Date: 26 Jul 2024\n\n<|eot_id|>" + HDR.format("user")),
        # Qwen2 injects "You are a helpful assistant."; Magpie's Qwen2 string drops it...
        ("qwen2", False, MAGPIE["qwen2"]),
        ("qwen2", True, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"),
        # ...while Magpie's Qwen2.5 string keeps Qwen2.5's injected system block.
        ("qwen2_5", True, MAGPIE["qwen2_5"]),
        ("qwen2_5", False, "<|im_start|>user\n"),
        ("chatml", True, "<|im_start|>user\n"),
        ("smollm2", True, SMOLLM2_SYSTEM + "<|im_start|>user\n"),
        # SmolLM2's bos_token is <|im_start|>: dropping the system block must not keep it twice.
        ("smollm2", False, "<|im_start|>user\n"),
        # Magpie writes "<s> <|user|>\n" and "<s> [INST] ": the space is a SentencePiece decode
        # artifact (see test_magpie_space_after_bos_is_an_extra_token); the templates have none.
        ("phi3_mini_4k_v1", True, MAGPIE["phi3"].replace("<s> ", "<s>")),
        # Phi-3's current template writes no BOS at all (chat inference encodes without it).
        ("phi3_mini_4k", True, "<|user|>\n"),
        ("mistral_v0_3", True, MAGPIE["mistral"].replace("<s> ", "<s>")),
        # Magpie's Gemma-2 string ends "user\n\n"; the template renders a single "\n".
        ("gemma2", True, MAGPIE["gemma2"][:-1]),
    ],
)
def test_pre_query_template_matches_magpie(name: str, keep_default_system: bool, expected: str) -> None:
    assert pre_query_template(tokenizer(name), keep_default_system=keep_default_system) == expected


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_raw_template_string_renders_like_the_tokenizer(name: str) -> None:
    tok = tokenizer(name)
    for keep in (True, False):
        raw = pre_query_template(chat_template(name), keep_default_system=keep, **special_kwargs(name))
        assert raw == pre_query_template(tok, keep_default_system=keep)
    assert mt_append_template(chat_template(name), **special_kwargs(name)) == mt_append_template(tok)


@pytest.mark.parametrize(
    ("name", "keep"),
    [
        ("llama3_1", False),  # Magpie's Llama-3.1 string is Llama-3's: no "Cutting Knowledge Date" block
        ("qwen2", False),  # Magpie's Qwen2 string drops "You are a helpful assistant."
        ("qwen2_5", True),  # Magpie's Qwen2.5 string keeps "You are Qwen, created by Alibaba Cloud..."
        ("smollm2", True),  # not in Magpie's table: methods.md 1.2's rule for new families keeps it
        ("llama3", True), ("chatml", True), ("gemma2", True), ("mistral_v0_3", True), ("phi3_mini_4k", True),
    ],
)
def test_default_system_choice_per_family(name: str, keep: bool) -> None:
    choice, why = default_system_choice(tokenizer(name))
    assert choice is keep and why
    assert default_system_choice(chat_template(name), **special_kwargs(name)) == (choice, why)


def test_magpie_instructions_takes_the_family_choice_unless_told() -> None:
    from synth.magpie.instructions import magpie_pre_query

    # The README's Llama-3.1 example used to get the dated system block (issue 10, item 13).
    assert magpie_pre_query(tokenizer("llama3_1")) == MAGPIE["llama3"]
    assert magpie_pre_query(tokenizer("qwen2")) == MAGPIE["qwen2"]
    assert magpie_pre_query(tokenizer("qwen2_5")) == MAGPIE["qwen2_5"]
    assert magpie_pre_query(tokenizer("smollm2")) == SMOLLM2_SYSTEM + "<|im_start|>user\n"
    assert magpie_pre_query(tokenizer("llama3_1"), keep_default_system=True).startswith(L3 + HDR.format("system") + "Cutting Knowledge Date")
    assert magpie_pre_query(tokenizer("smollm2"), keep_default_system=False) == "<|im_start|>user\n"
    assert magpie_pre_query(tokenizer("llama3_1"), system_prompt=control_system_prompt("math")) == MAGPIE["llama3_math"]


def test_magpie_instructions_validates_keep_default_system() -> None:
    from synth.magpie.instructions import MagpieInstructions

    assert MagpieInstructions(keep_default_system=False).params["keep_default_system"] is False
    with pytest.raises(ConfigError, match="keep_default_system"):
        MagpieInstructions(keep_default_system="yes")  # type: ignore[arg-type]


def test_raw_template_needs_its_special_tokens() -> None:
    with pytest.raises(ConfigError, match="bos_token"):
        pre_query_template(chat_template("llama3"))


def test_template_vars_reach_the_template() -> None:
    out = pre_query_template(tokenizer("llama3_1"), date_string="01 Jan 2025")
    assert "Today Date: 01 Jan 2025\n\n" in out


def test_magpie_space_after_bos_is_an_extra_token() -> None:
    # Encoded the way chat inference does (add_special_tokens=False), Magpie's Phi-3 string puts a
    # lone space between <s> and <|user|>; the model never sees that token after BOS in chat data.
    tok = tokenizer("phi3_mini_4k_v1")
    derived = tok.encode(pre_query_template(tok), add_special_tokens=False)
    published = tok.encode(MAGPIE["phi3"], add_special_tokens=False)
    assert derived[:2] == [1, 32010]
    assert published[0] == 1 and published[2] == 32010 and tok.decode([published[1]]) == " "
    assert len(published) == len(derived) + 1


# --------------------------------------------------------------------------- system prompts


@pytest.mark.parametrize("name", ["llama3", "llama3_1"])
def test_control_and_chat_system_prompts_match_magpie(name: str) -> None:
    # Magpie's Llama-3.1 entries reuse Llama-3's system turns, without the date lines.
    tok = tokenizer(name)
    assert pre_query_template(tok, system_prompt=control_system_prompt("math"), keep_default_system=False) == MAGPIE["llama3_math"]
    assert pre_query_template(tok, system_prompt=CHAT_SYSTEM_PROMPT, keep_default_system=False) == MAGPIE["llama3_with_system"]


def test_llama3_1_keeps_its_date_lines_before_a_system_prompt_by_default() -> None:
    out = pre_query_template(tokenizer("llama3_1"), system_prompt=control_system_prompt("code"))
    assert out == (L3 + HDR.format("system") + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                   + control_system_prompt("code") + "<|eot_id|>" + HDR.format("user"))


def test_system_prompt_replaces_qwen_default_system() -> None:
    out = pre_query_template(tokenizer("qwen2_5"), system_prompt=control_system_prompt("translation"))
    assert out == f"<|im_start|>system\n{control_system_prompt('translation')}<|im_end|>\n<|im_start|>user\n"


def test_mistral_puts_the_system_prompt_inside_the_user_turn() -> None:
    assert pre_query_template(tokenizer("mistral_v0_3"), system_prompt="Be brief.") == "<s>[INST] Be brief.\n\n"


def test_template_without_system_role_raises() -> None:
    with pytest.raises(ConfigError, match="System role not supported"):
        pre_query_template(tokenizer("gemma2"), system_prompt="Be brief.")


def test_template_that_drops_system_messages_raises() -> None:
    # Phi-3's first template skips system messages silently; the prompt would be lost unseen.
    with pytest.raises(ConfigError, match="drops the system message"):
        pre_query_template(tokenizer("phi3_mini_4k_v1"), system_prompt="Be brief.")


def test_control_system_prompt_rejects_unknown_task() -> None:
    with pytest.raises(ConfigError, match="unknown control task"):
        control_system_prompt("poetry")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- multi-turn


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llama3", MAGPIE["llama3_mt_append"]),
        ("llama3_1", MAGPIE["llama3_mt_append"]),
        ("qwen2", "<|im_start|>user\n"),
        ("smollm2", "<|im_start|>user\n"),
        ("phi3_mini_4k_v1", "<|user|>\n"),
        # Cut at a token boundary: "<|end|>\n<|" is the shared text of "<|end|>\n<|user|>" and
        # the history's "<|end|>\n<|endoftext|>", but "<|" is no token of its own.
        ("phi3_mini_4k", "<|user|>\n"),
        ("gemma2", "<start_of_turn>user\n"),
        ("mistral_v0_3", "[INST] "),
    ],
)
def test_mt_append_template(name: str, expected: str) -> None:
    assert mt_append_template(tokenizer(name)) == expected


HISTORY = [{"role": "user", "content": "What is a prime?"}, {"role": "assistant", "content": "A number with two divisors."}]


@pytest.mark.parametrize("name", ["llama3", "llama3_1", "qwen2_5", "smollm2", "phi3_mini_4k_v1", "mistral_v0_3"])
def test_mt_pre_query_equals_history_plus_append(name: str) -> None:
    # Magpie's gen_mt.py: render the history without generation prompt, append mt_append_template.
    tok = tokenizer(name)
    system = None if name == "mistral_v0_3" else MT_SYSTEM_PROMPT  # Mistral folds it into the last user turn
    history = ([{"role": "system", "content": system}] if system else []) + HISTORY
    rendered = tok.apply_chat_template(history, tokenize=False, add_generation_prompt=False)
    assert mt_pre_query_template(tok, HISTORY, system_prompt=system) == rendered + mt_append_template(tok)


def test_mt_pre_query_has_no_eos_mid_conversation() -> None:
    # Phi-3's current template ends a rendered history with EOS; history + append would put
    # <|endoftext|> before the new user turn. mt_pre_query_template renders the turn itself.
    tok = tokenizer("phi3_mini_4k")
    out = mt_pre_query_template(tok, HISTORY, system_prompt=None)
    assert out == "<|user|>\nWhat is a prime?<|end|>\n<|assistant|>\nA number with two divisors.<|end|>\n<|user|>\n"
    assert "<|endoftext|>" in tok.apply_chat_template(HISTORY, tokenize=False)


def test_mt_pre_query_uses_magpie_mt_system_prompt_by_default() -> None:
    out = mt_pre_query_template(tokenizer("llama3"), HISTORY)
    assert out.startswith(L3 + HDR.format("system") + MT_SYSTEM_PROMPT + "<|eot_id|>")
    assert out.endswith("A number with two divisors.<|eot_id|>" + HDR.format("user"))
    assert MT_SYSTEM_PROMPT.startswith("You are a helpful Al assistant. The user will engage in a multi-round")


def test_mt_pre_query_needs_an_assistant_turn_last() -> None:
    with pytest.raises(ConfigError, match="must end with an assistant turn"):
        mt_pre_query_template(tokenizer("llama3"), HISTORY[:1])


# --------------------------------------------------------------------------- stop tokens


@pytest.mark.parametrize(
    ("name", "magpie", "extra", "missing"),
    [
        ("llama3", "llama3", {L3}, set()),  # BOS is always a stop; Magpie leaves Llama-3's out
        ("llama3_1", "llama3", {L3, "<|eom_id|>"}, set()),
        ("qwen2", "qwen2", set(), set()),
        ("qwen2_5", "qwen2", set(), set()),
        ("phi3_mini_4k", "phi3", set(), {"<unk>"}),  # <unk> is never sampled
        # The first Phi-3 template drops system messages, so <|system|> never appears in it.
        ("phi3_mini_4k_v1", "phi3", set(), {"<unk>", "<|system|>"}),
        ("gemma2", "gemma2", {"<start_of_turn>"}, set()),  # Magpie's Gemma-1.1 entry has it too
        ("mistral_v0_3", "mistral", set(), set()),
    ],
)
def test_stop_strings_against_magpie(name: str, magpie: str, extra: set[str], missing: set[str]) -> None:
    stop, ids = stop_strings(tokenizer(name))
    assert stop[-1] == "assistant" and "assistant" not in stop[:-1]
    tokens = dict(zip(stop[:-1], ids))
    assert ids == sorted(ids)
    assert set(tokens) == (set(MAGPIE_STOPS[magpie]) | extra) - missing
    assert all(tokens[t] == i for t, i in MAGPIE_STOPS[magpie].items() if t in tokens)


def test_stop_strings_role_words_and_chatml_eos() -> None:
    stop, ids = stop_strings(tokenizer("smollm2"), role_words=("Assistant", "assistant"))
    assert stop == ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "Assistant", "assistant"]
    assert ids == [0, 1, 2]


def test_module_import_stays_light() -> None:
    code = ("import sys, synth.magpie.template, synth.magpie.render, synth.magpie.system_prompts, synth.magpie.sanitize, synth.magpie.tag_prompts; "
            "print(sorted(m for m in ('transformers', 'torch', 'vllm', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
