"""The transformers backend: the same mechanics as vLLM on the tiny random Llama, hidden
states, and the post-hoc stop-string handling checked on SmolLM2 (real text)."""
from __future__ import annotations

import math

import pytest

from tests.tiny_model import pick_stop_string

pytest.importorskip("transformers")
pytestmark = pytest.mark.model

FRUITS = [{"role": "user", "content": "Name three fruits."}]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from synth.backends.llm import get_llm, release

    llm = get_llm("transformers", str(tiny_model_dir), max_model_len=256, batch_size=4)
    yield llm
    release(llm)


@pytest.fixture(scope="module")
def smol(smollm_dir):
    from synth.backends.llm import get_llm, release

    llm = get_llm("transformers", str(smollm_dir), max_model_len=2048)
    yield llm
    release(llm)


def test_n_and_max_tokens(tiny):
    outs = tiny.generate(["hello world", "what is 3 plus 4?"], {"n": 3, "temperature": 1.0, "max_tokens": 5})
    assert [len(o.completions) for o in outs] == [3, 3]
    for c in (c for o in outs for c in o.completions):
        assert (c.finish_reason, len(c.token_ids)) == ("length", 5) or (c.finish_reason == "stop" and len(c.token_ids) <= 5)


def test_greedy_with_n_is_a_config_error(tiny):
    from pipelines.errors import ConfigError

    # transformers raised "Greedy methods ... do not support num_return_sequences" from generate()
    with pytest.raises(ConfigError, match="identical greedy"):
        tiny.generate(["hello"], {"n": 2, "temperature": 0, "max_tokens": 4})


def test_logprobs_top_k(tiny):
    (out,) = tiny.generate(["hello world"], {"temperature": 1.0, "max_tokens": 6, "logprobs": 3})
    c = out.completions[0]
    assert c.logprobs is not None and len(c.logprobs) == len(c.token_ids)
    for pos, tid in zip(c.logprobs, c.token_ids):
        assert 1 <= len(pos) <= 4 and all(v <= 0.0 for v in pos.values())
        assert tiny.tokenizer.decode([tid]) in pos  # the sampled token is always reported
    assert max(len(pos) for pos in c.logprobs) >= 3


def test_per_request_seeds_reproducible_across_batches(tiny):
    sampling = {"temperature": 1.0, "max_tokens": 8}
    # Regression: the whole batch used to be seeded with the first row's seed, so equal
    # (prompt, seed) pairs gave different samples depending on their neighbours.
    mixed = tiny.generate(["hello world", "the model", "hello world"], sampling, seeds=[7, 7, 8])
    alone = tiny.generate(["hello world"], sampling, seeds=[7])
    again = tiny.generate(["the model", "hello world", "hello world"], sampling, seeds=[7, 8, 7])
    ids = lambda o: o.completions[0].token_ids
    assert ids(mixed[0]) == ids(alone[0]) == ids(again[2])
    assert ids(mixed[1]) == ids(again[0])
    assert ids(mixed[2]) == ids(again[1]) != ids(mixed[0])
    # a seed in the sampling dict seeds every request, as in vLLM
    same = tiny.generate(["hello world", "hello world"], {**sampling, "seed": 7})
    assert ids(same[0]) == ids(same[1]) == ids(alone[0])


def test_prompt_too_long_is_a_row_error(tiny):
    outs = tiny.generate(["word " * 400, "hello", "world"], {"temperature": 0, "max_tokens": 4})
    assert outs[0].error.startswith("prompt_too_long") and outs[0].completions == []
    assert all(o.error is None and o.completions[0].token_ids for o in outs[1:])


def test_max_tokens_clipped_to_the_context(tiny):
    prompt = "word " * 240
    n_prompt = len(tiny.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert 200 < n_prompt < 250  # fits a 256-token context, but not with 64 new tokens
    (out,) = tiny.generate([prompt], {"temperature": 0, "max_tokens": 64})
    assert out.error is None and n_prompt < n_prompt + len(out.completions[0].token_ids) <= 256


def test_stop_token_id(tiny):
    greedy = {"temperature": 0, "max_tokens": 10}
    first = tiny.generate(["hello world"], greedy)[0].completions[0]
    stop_id = first.token_ids[2]
    cut = first.token_ids.index(stop_id)
    c = tiny.generate(["hello world"], {**greedy, "stop_token_ids": [stop_id]})[0].completions[0]
    # as vLLM: token_ids run through the stop token, the text stops before it
    assert (c.finish_reason, c.stop_reason, c.token_ids) == ("stop", stop_id, first.token_ids[: cut + 1])
    assert c.text == tiny.tokenizer.decode(first.token_ids[:cut])


def test_stop_string_from_own_greedy_output(tiny):
    greedy = {"temperature": 0, "max_tokens": 24}
    for prompt in ["hello world", "what is 3 plus 4?", "name three fruits"]:
        picked = pick_stop_string(tiny.generate([prompt], greedy)[0].text)
        if picked:
            break
    else:
        pytest.fail("no usable stop string in the tiny model's greedy outputs")
    stop, before = picked
    c = tiny.generate([prompt], {**greedy, "stop": [stop], "logprobs": 1})[0].completions[0]
    assert (c.text, c.finish_reason, c.stop_reason) == (before, "stop", stop)
    assert stop in tiny.tokenizer.decode(c.token_ids) and stop not in tiny.tokenizer.decode(c.token_ids[:-1])
    assert len(c.logprobs) == len(c.token_ids)


def test_hidden_states_shape(tiny):
    texts = ["hello world", "what is 3 plus 4?"]
    states = tiny.hidden_states(texts)
    lengths = [len(tiny.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert [tuple(h.shape) for h in states] == [(n, 128) for n in lengths]
    assert str(states[0].dtype) == "torch.float32"
    first_layer = tiny.hidden_states(texts[:1], layer=0)[0]
    assert first_layer.shape == states[0].shape and not (first_layer == states[0]).all()


# Bug (issue 10, item 7): structured output was refused outright, so every Magpie tag stage
# (and the judge) died on the transformers fallback. `choice` is now constrained decoding and
# `json` Magpie's {-prefill + } stop; regex/grammar are still refused by name.
def test_choice_output_is_always_a_choice_with_masked_logprobs(tiny):
    choices = [str(i) for i in range(1, 11)]
    outs = tiny.generate(["hello world", "what is 3 plus 4?", "x"], {"temperature": 1.0, "max_tokens": 8, "logprobs": 20, "seed": 3,
                                                                      "structured_outputs": {"choice": choices}})
    for o in outs:
        c = o.completions[0]
        assert c.text in choices and c.finish_reason == "stop"
        # like vLLM (grammar mask before logprobs): only tokens that can start a choice
        assert c.logprobs[0] and set(c.logprobs[0]) <= {str(i) for i in range(10)}
        assert abs(sum(math.exp(v) for v in c.logprobs[0].values()) - 1.0) < 1e-4


def test_json_output_is_magpies_prefill_and_stop(smol):
    from synth.magpie.tag_prompts import QUALITY_SCHEMA, parse_quality, quality_prompt

    (out,) = smol.chat([[{"role": "user", "content": quality_prompt("Name three fruits.")}]],
                       {"temperature": 0, "max_tokens": 120, "structured_outputs": {"json": QUALITY_SCHEMA}})
    from pipelines.errors import ParseError

    c = out.completions[0]
    assert c.text.startswith("{")  # the prefill is part of the answer
    assert "}" not in c.text[:-1]  # nothing after the first "}": it stops there (kept)
    assert c.text.endswith("}") == (c.stop_reason == "}")
    try:  # SmolLM2 may also end with eos before any "}": then it does not parse, as in Magpie
        assert parse_quality(c.text)["input_quality"]
    except ParseError:
        assert not c.text.endswith("}") or c.text.count("{") > 1


def test_regex_output_is_refused(tiny):
    from pipelines.errors import BackendError

    with pytest.raises(BackendError, match="no regex structured output"):
        tiny.generate(["hi"], {"structured_outputs": {"regex": "a+"}})


def test_chat_template_and_stop_strings_on_smollm(smol):
    greedy = {"temperature": 0, "max_tokens": 20}
    rendered = smol.tokenizer.apply_chat_template(FRUITS, tokenize=False, add_generation_prompt=True)
    via_chat, via_generate = smol.chat([FRUITS], greedy)[0], smol.generate([rendered], greedy)[0]
    assert via_chat.text == via_generate.text and "Bananas" in via_chat.text
    assert via_chat.completions[0].finish_reason == "stop"  # eos before 20 tokens
    c = smol.chat([FRUITS], {**greedy, "stop": ["\n", "Oranges"]})[0].completions[0]
    assert (c.text, c.finish_reason, c.stop_reason) == (via_chat.text.split("\n")[0], "stop", "\n")
    kept = smol.chat([FRUITS], {**greedy, "stop": ["Oranges"], "include_stop_str_in_output": True})[0]
    assert kept.text.endswith("Oranges") and kept.text == via_chat.text[: via_chat.text.index("Oranges") + len("Oranges")]
