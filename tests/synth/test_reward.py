"""synth.judge.reward: the judge's continuous expected score, and the reward-model path."""
from __future__ import annotations

import math

import pyarrow as pa
import pytest

from pipelines.errors import ConfigError, ParseError
from synth.judge.reward import RewardScore, judge_expected_score, label_probs


def _lp(**probs: float) -> dict[str, float]:
    return {k.lstrip("_"): math.log(v) for k, v in probs.items()}


def test_expected_score_is_continuous_and_splits_ten():
    assert judge_expected_score({"7": 0.0}) == 7.0
    assert judge_expected_score(_lp(_7=0.5, _8=0.25, _9=0.25)) == 7.75
    # "10" spelled "1" + "0": P("0" | "1") = 0.75 moves three quarters of "1"'s mass to 10
    assert judge_expected_score(_lp(_1=0.4, _9=0.6), _lp(_0=0.75)) == pytest.approx((0.1 * 1 + 0.6 * 9 + 0.3 * 10) / 1.0)
    assert judge_expected_score(_lp(_1=0.4, _9=0.6)) == pytest.approx(0.4 + 5.4)  # no continuation read: all of it is 1
    # byte-BPE / SentencePiece spellings count; other tokens are renormalised away
    assert judge_expected_score({"\u01208": math.log(0.3), "\u25818": math.log(0.3), "Great": math.log(0.4)}) == 8.0
    assert label_probs({" 3": 0.0}, ["3", "4"]) == [1.0, 0.0]


def test_no_score_token_is_a_parse_error_with_the_top_tokens():
    with pytest.raises(ParseError) as exc:
        judge_expected_score({"The": -0.1, "Great": -2.5})
    assert "'The'" in exc.value.raw


def test_judge_without_logprobs_is_a_config_error():
    with pytest.raises(ConfigError, match="logprobs"):
        RewardScore(sampling={"logprobs": None})


@pytest.fixture(scope="module")
def tiny_judge(tiny_model_dir):
    from synth.backends.llm import release

    st = RewardScore(backend="transformers", model=str(tiny_model_dir), engine={"max_model_len": 512})
    st.load()
    yield st
    release(st.llm)


TABLE = pa.Table.from_pylist([
    {"id": "a", "instruction": "Say hi", "input": None, "response": "Hi!", "responses": ["Hi!", "Hello there.", "Go away."]},
    {"id": "b", "instruction": "Add these", "input": "2 2", "response": "4", "responses": ["4", "five", "22"]},
    {"id": "c", "instruction": "Name a colour", "input": "", "response": "blue", "responses": ["blue", "red", "car"]},
])


# Bug (issue 10, item 11): the judge gave an integer 1-10, the same for almost every sample
# of a small model, so best-of-n pairs tied and magpie-prefs made zero pairs. The score is now
# the expected value over the score tokens' probabilities: samples do not tie.
@pytest.mark.model
def test_judge_scores_are_continuous_and_go_to_judge_score(tiny_judge, tiny_model_dir):
    kept, rej = tiny_judge.process(TABLE)
    assert rej.num_rows == 0
    scores = kept.column("judge_score").to_pylist()
    assert all(1.0 <= s <= 10.0 for s in scores) and len(set(scores)) == 3
    assert "instruct_reward" not in kept.column_names
    assert kept.column("reward_model").to_pylist() == [f"judge:{tiny_model_dir}"] * 3
    many = RewardScore(backend="transformers", model=str(tiny_model_dir), engine={"max_model_len": 512}, column="responses")
    many.llm = tiny_judge.llm
    kept, _ = many.process(TABLE)
    lists = kept.column("rewards").to_pylist()
    assert all(len(set(x)) == 3 for x in lists)  # no ties among a prompt's samples
    assert lists[0][0] == pytest.approx(scores[0], abs=1e-6)  # same text, same score


# Bug (issue 10, item 16): the reward model cut texts at 2048 tokens and recorded nothing.
@pytest.mark.model
def test_reward_model_records_truncation_and_scores_as_unbatched(tiny_reward_model_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    t = pa.Table.from_pylist([
        {"id": "a", "instruction": "Say hi", "response": "Hi!"},
        {"id": "b", "instruction": "Tell a long story", "response": "once upon a time " * 40},
        {"id": "c", "instruction": "Add 2+2", "response": "4"},
    ])
    st = RewardScore(reward_model=str(tiny_reward_model_dir), max_length=64, batch_size=3)
    assert st.engines() == [] and set(st.adds) == {"instruct_reward", "reward_model", "reward_truncated"}
    st.load()
    kept, rej = st.process(t)
    assert rej.num_rows == 0
    assert kept.column("reward_truncated").to_pylist() == [False, True, False]
    # right padding in a batch gives each text the score it gets alone
    tok = AutoTokenizer.from_pretrained(tiny_reward_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model_dir).eval()
    chat = [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi!"}]
    ids = tok(tok.apply_chat_template(chat, tokenize=False), return_tensors="pt")  # no BOS in this ChatML template
    with torch.no_grad():
        alone = float(model(**ids).logits[0, 0])
    assert kept.column("instruct_reward")[0].as_py() == pytest.approx(alone, abs=1e-4)
