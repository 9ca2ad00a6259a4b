from __future__ import annotations

import pyarrow as pa
import pytest

from filters.text.language_id import LanguageId, detect_language
from pipelines.errors import ParseError
from pipelines.pairs import best_and_worst
from pipelines.stage import REASON
from synth.judge.best_of_n import BestOfNPairs
from synth.judge.reward import parse_judge_score


def test_best_and_worst_ignores_missing_and_ties():
    assert best_and_worst([3.0, 9.0, 1.0, 9.0]) == (1, 2)
    assert best_and_worst([None, 2.0, 5.0]) == (2, 1)
    assert best_and_worst([4.0, 4.0]) is None
    assert best_and_worst([7.0]) is None


def test_best_of_n_pairs_in_trl_format():
    t = pa.Table.from_pylist([
        {"id": "a", "instruction": "Q1", "responses": ["bad", "good", "ok"], "rewards": [1.0, 9.0, 5.0]},
        {"id": "b", "instruction": "Q2", "responses": ["x", "y"], "rewards": [3.0, 3.0]},
        {"id": "c", "instruction": "Q3", "responses": ["x", "y"], "rewards": [3.0, 3.5]},
    ])
    kept, rej = BestOfNPairs(min_margin=1.0).process(t)
    r = kept.to_pylist()[0]
    assert r["prompt"] == [{"role": "user", "content": "Q1"}]
    assert r["chosen"] == [{"role": "assistant", "content": "good"}]
    assert r["rejected"] == [{"role": "assistant", "content": "bad"}]
    assert (r["score_chosen"], r["score_rejected"]) == (9.0, 1.0)
    assert rej.column(REASON).to_pylist() == ["tie", "low_margin"]


def test_best_of_n_blank_or_unscored_responses_take_no_part():
    # Folding best_and_worst with ACT's act_pick: a blank response or a null reward is a failed
    # generation, not a preference; fewer than two usable responses is its own reason.
    t = pa.Table.from_pylist([
        {"id": "a", "instruction": "Q1", "responses": ["", "good", "ok"], "rewards": [9.0, 5.0, 1.0]},
        {"id": "b", "instruction": "Q2", "responses": ["x", "y"], "rewards": [3.0, None]},
    ])
    kept, rej = BestOfNPairs().process(t)
    assert kept.column("chosen").to_pylist() == [[{"role": "assistant", "content": "good"}]]
    assert (kept.column("score_chosen")[0].as_py(), kept.column("score_rejected")[0].as_py()) == (5.0, 1.0)
    assert rej.column(REASON).to_pylist() == ["too_few_responses"]


def test_judge_score_parser():
    assert parse_judge_score("8") == 8.0
    assert parse_judge_score("Score: 10/10") == 10.0
    with pytest.raises(ParseError):
        parse_judge_score("excellent")


def test_language_id_upper_case_iso():
    assert detect_language("The quick brown fox jumps over the lazy dog and runs away.") == "EN"
    assert detect_language("Le renard brun rapide saute par-dessus le chien paresseux.") == "FR"
    assert detect_language("   ") == "UNKNOWN"
    kept, rej = LanguageId().process(pa.table({"id": ["1"], "instruction": ["¿Dónde está la biblioteca de la ciudad?"]}))
    assert kept.column("language").to_pylist() == ["ES"] and rej.num_rows == 0


@pytest.mark.model
def test_reward_model_scores_responses_and_lists(tiny_reward_model_dir):
    """Any AutoModelForSequenceClassification reward model the user names (random weights here)."""
    from synth.judge.reward import RewardScore

    t = pa.Table.from_pylist([
        {"id": "a", "instruction": "Say hi", "response": "Hi!", "responses": ["Hi!", "Hello there."]},
        {"id": "b", "instruction": "Add 2+2", "response": "4", "responses": ["4", "five"]},
    ])
    one = RewardScore(reward_model=str(tiny_reward_model_dir))
    one.load()
    kept, rej = one.process(t)
    assert rej.num_rows == 0
    scores = kept.column("instruct_reward").to_pylist()
    assert all(isinstance(s, float) for s in scores) and scores[0] != scores[1]
    assert kept.column("reward_model").to_pylist() == [str(tiny_reward_model_dir)] * 2
    many = RewardScore(reward_model=str(tiny_reward_model_dir), column="responses")
    many.load()
    kept, _ = many.process(t)
    lists = kept.column("rewards").to_pylist()
    assert [len(x) for x in lists] == [2, 2]
    assert lists[0][0] == pytest.approx(scores[0], abs=1e-4)  # same text, same score, batched or not
