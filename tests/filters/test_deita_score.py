"""deita scores: the expected-score maths and prompts on hand-made inputs, the stage's
wiring with a fake engine, and a real run with the embedded SmolLM2."""
from __future__ import annotations

import math

import pyarrow as pa
import pytest

from filters.select.deita_maths import (
    DEITA_FALLBACK,
    evol_score,
    expected_score,
    label_logprobs,
)
from filters.select.deita_prompts import (
    COMPLEXITY_TEMPLATE,
    QUALITY_TEMPLATE,
    complexity_prompt,
    conversation_turns,
    quality_prompt,
)
from filters.select.deita_score import DeitaScore
from pipelines.chat_format import MESSAGES
from pipelines.errors import ConfigError, ParseError
from synth.backends.llm import Completion, Output

LN = math.log


# -- expected_score -----------------------------------------------------------------

def test_uniform_over_labels_is_3_5():
    assert expected_score({str(i): -1.7 for i in range(1, 7)}) == pytest.approx(3.5)


def test_all_mass_on_six_is_6():
    assert expected_score({"6": 0.0, "Hello": -40.0}) == 6.0


def test_renormalizes_over_the_labels_only():
    # 0.5 on "The" is ignored: the label probabilities 0.1 / 0.4 renormalize to 0.2 / 0.8
    lps = {"The": LN(0.5), "2": LN(0.1), "5": LN(0.4)}
    assert expected_score(lps) == pytest.approx(2 * 0.2 + 5 * 0.8)


def test_missing_labels_count_as_probability_zero():
    assert expected_score({"1": LN(0.3), "3": LN(0.3), "foo": LN(0.4)}) == pytest.approx(2.0)


def test_no_label_raises_parse_error_with_the_alternatives():
    with pytest.raises(ParseError) as exc:
        expected_score({"The": -0.1, "A": -2.5, "7": -3.0})
    assert "'The': -0.100" in exc.value.raw


def test_empty_dict_raises_parse_error():
    with pytest.raises(ParseError):
        expected_score({})


def test_variants_with_spaces_and_markers_add_up():
    # " 4", "4" and SentencePiece's "▁4" are one label: probabilities 0.1 + 0.1 + 0.2 = 0.4
    lps = {" 4": LN(0.1), "4": LN(0.1), "\u25814": LN(0.2), "2": LN(0.4)}
    assert label_logprobs(lps, ["2", "4"]) == pytest.approx([LN(0.4), LN(0.4)])
    assert expected_score(lps) == pytest.approx(3.0)


def test_multi_digit_tokens_are_not_labels():
    assert label_logprobs({"12": -0.1, "1": -2.0, "1.": -0.5}, ["1", "2"]) == [-2.0, -math.inf]


def test_custom_labels_score_by_position():
    assert expected_score({"low": 0.0}, labels=("low", "high")) == 1.0


# -- evol score, turns, prompts -----------------------------------------------------

def test_evol_score_single_and_multi_turn():
    assert evol_score([2.5], [4.0]) == 10.0
    assert evol_score([1.0, 2.0, 3.0], [6.0, 5.0, 4.0]) == 6.0 + 10.0 + 12.0
    with pytest.raises(ValueError):
        evol_score([1.0], [1.0, 2.0])


def test_conversation_turns_pairs_user_and_assistant():
    msgs = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "q3"},
    ]
    assert conversation_turns(msgs) == [("q1", "a1"), ("q2", "a2"), ("q3", "")]
    assert conversation_turns([{"role": "system", "content": "s"}]) == []


def test_prompts_are_deitas_verbatim():
    assert complexity_prompt("Q") == "You are a helpful assistant. Please identify the complexity score of the following user query. \n##Query: Q  \n##Complexity: "
    assert quality_prompt("Q", "A") == "You are a helpful assistant. Please identify the quality score of the Response corresponding to the Question. \n #Question#:\nQ\n#Response#:\nA \n##Quality: "
    assert "{instruction}" in COMPLEXITY_TEMPLATE and "{output}" in QUALITY_TEMPLATE


# -- the stage, with a fake engine ----------------------------------------------------

class FakeLLM:
    """Answers every prompt with fixed first-token logprobs chosen by a rule on the prompt."""

    name = "fake"
    tokenizer = None  # no local tokenizer: ``template: auto`` means chat

    def __init__(self, rule):
        self.rule = rule
        self.calls: list[tuple[str, int]] = []

    def _out(self, text: str) -> Output:
        lp = self.rule(text)
        if isinstance(lp, str):
            return Output(error=lp)
        return Output([Completion(text="x", logprobs=[lp])])

    def generate(self, prompts, sampling, *, seeds=None):
        self.calls.append(("generate", len(prompts)))
        return [self._out(p) for p in prompts]

    def chat(self, chats, sampling, *, seeds=None, continue_final_message=False):
        assert continue_final_message and chats[0][-1]["role"] == "assistant"
        self.calls.append(("chat", len(chats)))
        return [self._out(c[0]["content"]) for c in chats]


def _rule(text: str):
    if "BROKEN" in text:
        return {"The": -0.1}
    if "HUGE" in text:
        return "prompt_too_long: 3000 tokens, max_model_len 2048"
    if "##Complexity" in text:
        return {"2": 0.0}
    return {"4": LN(0.5), "5": LN(0.5)}  # quality 4.5


def _stage(**kw) -> DeitaScore:
    st = DeitaScore(**kw)
    st.llm = st.quality_llm = FakeLLM(_rule)
    return st


def test_single_turn_scores_and_columns():
    t = pa.table({"id": ["a", "b"], "instruction": ["Sum 2+2.", "Name a fruit."], "response": ["4", "Apple"]})
    kept, rej = _stage().process(t)
    assert rej.num_rows == 0
    assert kept.column("complexity_scores").to_pylist() == [[2.0], [2.0]]
    assert kept.column("quality_scores").to_pylist() == [[4.5], [4.5]]
    assert kept.column("deita_score").to_pylist() == [9.0, 9.0]
    assert kept.column("complexity").to_pylist() == [2.0, 2.0] and kept.column("quality").to_pylist() == [4.5, 4.5]


def test_alpaca_input_is_part_of_the_instruction():
    seen = []
    st = DeitaScore()
    st.llm = st.quality_llm = FakeLLM(lambda p: seen.append(p) or {"3": 0.0})
    t = pa.table({"id": ["a", "b"], "instruction": ["Translate.", "Say hi."], "input": ["Bonjour", ""], "response": ["Hello", "Hi"]})
    st.process(t)
    assert any("##Query: Translate.\n\nBonjour  \n" in p for p in seen)
    assert any("##Query: Say hi.  \n" in p for p in seen)


def test_multi_turn_lists_per_turn():
    msgs = [[{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}],
            [{"role": "user", "content": "only"}, {"role": "assistant", "content": "one"}]]
    t = pa.table({"id": ["a", "b"], "messages": pa.array(msgs, MESSAGES)})
    kept, _ = _stage(messages_column="messages").process(t)
    assert kept.column("complexity_scores").to_pylist() == [[2.0, 2.0], [2.0]]
    assert kept.column("deita_score").to_pylist() == [18.0, 9.0]
    assert kept.column("quality").to_pylist() == [4.5, 4.5]


def test_parse_failure_rejects_with_the_top_tokens():
    t = pa.table({"id": ["a", "b", "c"], "instruction": ["ok", "BROKEN", "HUGE"], "response": ["r", "r", "r"]})
    kept, rej = _stage().process(t)
    assert kept.column("id").to_pylist() == ["a"]
    assert rej.column("reject_reason").to_pylist() == ["parse_error:deita", "prompt_too_long"]
    assert rej.column("reject_raw")[0].as_py() == "complexity turn 1: 'The': -0.100"
    assert kept.num_rows + rej.num_rows == t.num_rows


def test_fallback_uses_3_and_counts():
    t = pa.table({"id": ["a", "b"], "instruction": ["ok", "BROKEN"], "response": ["r", "r"]})
    kept, rej = _stage(on_error="fallback").process(t)
    assert rej.num_rows == 0
    row = kept.slice(1).to_pylist()[0]
    assert row["complexity_scores"] == [DEITA_FALLBACK] and row["quality_scores"] == [DEITA_FALLBACK]
    assert row["deita_fallbacks"] == 2 and row["deita_score"] == 9.0


def test_conversation_without_user_turn_is_rejected():
    t = pa.table({"id": ["a"], "messages": pa.array([[{"role": "system", "content": "s"}]], MESSAGES)})
    kept, rej = _stage(messages_column="messages").process(t)
    assert kept.num_rows == 0 and rej.column("reject_reason").to_pylist() == ["no_user_turn"]


def test_one_engine_call_per_score_kind():
    st = _stage()
    t = pa.table({"id": [str(i) for i in range(5)], "instruction": ["q"] * 5, "response": ["r"] * 5})
    st.process(t)
    assert st.llm.calls == [("chat", 5), ("chat", 5)]


@pytest.mark.parametrize("kw", [{"template": "jinja"}, {"on_error": "skip"}, {"sampling": {"logprobs": 0}}, {"sampling": {"max_tokens": 0}}])
def test_bad_config_raises(kw):
    with pytest.raises(ConfigError):
        DeitaScore(**kw)


def test_requires_follow_the_format():
    assert set(DeitaScore().requires) == {"instruction", "response"}
    assert set(DeitaScore(messages_column="conv").requires) == {"conv"}
    assert "deita_fallbacks" in DeitaScore(on_error="fallback").adds


# -- a real model ---------------------------------------------------------------------

@pytest.mark.model
@pytest.mark.parametrize("backend", ["transformers", "vllm"])
def test_smollm2_scores_single_and_multi_turn(backend):
    from synth.backends.llm import release_all

    single = pa.table({
        "id": ["a", "b", "c", "d"],
        "instruction": ["What is 2+2?", "Write a haiku about autumn.", "Explain how a transformer's attention works, with equations.", "Translate to French."],
        "input": ["", "", "", "Good morning"],
        "response": ["4", "Leaves drift down slowly / ...", "Attention computes softmax(QK^T / sqrt(d)) V ...", "Bonjour"],
    })
    multi = pa.table({"id": ["e", "f"], "messages": pa.array([
        [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello! How can I help?"},
         {"role": "user", "content": "Give me a pasta recipe."}, {"role": "assistant", "content": "Boil pasta, add sauce."}],
        [{"role": "user", "content": "Name three colors."}, {"role": "assistant", "content": "Red, green, blue."}],
    ], MESSAGES)})
    try:
        st = DeitaScore(backend=backend, engine={"max_model_len": 1024})
        kept, rej = st.process(single)
        assert kept.num_rows + rej.num_rows == 4
        for row in kept.to_pylist():
            assert len(row["complexity_scores"]) == len(row["quality_scores"]) == 1
            assert 1.0 <= row["complexity"] <= 6.0 and 1.0 <= row["quality"] <= 6.0
            assert row["deita_score"] == pytest.approx(row["complexity"] * row["quality"])
        # deita's raw prompt (the released scorers' format) through the same engine
        mt = DeitaScore(messages_column="messages", template="raw", backend=backend, engine={"max_model_len": 1024})
        kept, rej = mt.process(multi)
        assert kept.num_rows + rej.num_rows == 2
        lens = {r["id"]: len(r["complexity_scores"]) for r in kept.to_pylist()}
        assert lens == {"e": 2, "f": 1}
        for row in kept.to_pylist():
            assert all(1.0 <= s <= 6.0 for s in row["complexity_scores"] + row["quality_scores"])
            assert row["deita_score"] == pytest.approx(evol_score(row["complexity_scores"], row["quality_scores"]))
    finally:
        release_all()


def test_engines_lists_both_scorers():
    # bug: engines() reported the complexity model only, so the executor's memory-share
    # phases never saw the quality model's engine
    one = DeitaScore(model="/m/a").engines()
    two = DeitaScore(complexity_model="/m/a", quality_model="/m/b", engine={"memory_share": 0.4}).engines()
    assert len(one) == 1 and [k[1] for k, _ in two] == ["/m/a", "/m/b"] and [s for _, s in two] == [0.4, 0.4]
    assert DeitaScore(backend="openai", model="served").engines() == []
