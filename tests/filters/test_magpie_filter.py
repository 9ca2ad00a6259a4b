from __future__ import annotations

import pyarrow as pa
import pytest

from filters.select.magpie_filter import MagpieFilter
from pipelines.errors import ConfigError
from pipelines.stage import REASON


def rows():
    return pa.Table.from_pylist([
        {"id": "a", "instruction": "Explain DNS.", "response": "x" * 50, "input_quality": "good", "instruct_reward": 1.0, "min_similar_uuid": None},
        {"id": "b", "instruction": "Explain DNS!", "response": "x" * 90, "input_quality": "excellent", "instruct_reward": 2.0, "min_similar_uuid": "a"},
        {"id": "c", "instruction": "Write a poem", "response": "x" * 10, "input_quality": "poor", "instruct_reward": 5.0, "min_similar_uuid": None},
        {"id": "d", "instruction": "List these:", "response": "x" * 70, "input_quality": "good", "instruct_reward": 3.0, "min_similar_uuid": None},
        {"id": "e", "instruction": "Sum 2+2", "response": "x" * 30, "input_quality": "average", "instruct_reward": -12.0, "min_similar_uuid": None},
        {"id": "f", "instruction": "Plan a trip", "response": "x" * 80, "input_quality": "excellent", "instruct_reward": 0.0, "min_similar_uuid": "f"},
        {"id": "g", "instruction": "Tell a joke", "response": "x" * 20, "input_quality": "good", "instruct_reward": 0.5, "min_similar_uuid": None},
    ])


def test_published_rules_each_with_its_reason():
    kept, rej = MagpieFilter(min_quality="good", min_reward=-10).process(rows())
    assert kept.column("id").to_pylist() == ["a", "f", "g"]
    assert dict(zip(rej.column("id").to_pylist(), rej.column(REASON).to_pylist())) == {
        "b": "duplicate_of:a", "c": "low_quality", "d": "incomplete_instruction", "e": "low_quality",
    }


def test_average_threshold_and_longest_k():
    kept, rej = MagpieFilter(min_quality="average", min_reward=-10, top_k=2).process(rows())
    assert kept.column("id").to_pylist() == ["a", "f"]  # longest responses among survivors (80, 50 > 20); e fails on reward
    reasons = dict(zip(rej.column("id").to_pylist(), rej.column(REASON).to_pylist()))
    assert reasons["g"] == "not_in_top_k" and reasons["e"] == "low_reward"
    assert kept.num_rows + rej.num_rows == 7


def test_rules_can_be_switched_off_and_bad_values_fail():
    kept, _ = MagpieFilter(min_quality=None, min_reward=None, drop_incomplete=False, dedup=False).process(rows())
    assert kept.num_rows == 7
    with pytest.raises(ConfigError):
        MagpieFilter(min_quality="great")


# Bug (issue 10, item 10): with no reward model the judge's 1-10 score was written into
# instruct_reward, so Magpie's `instruct_reward >= -10` kept every row. The judge now writes
# judge_score, and the filter refuses to threshold a column holding another kind of score.
def test_reward_threshold_on_a_judge_column_is_a_config_error():
    with pytest.raises(ConfigError, match="'judge_score' holds an LLM judge's expected 1-10 score"):
        MagpieFilter(min_reward=-10, reward_column="judge_score")
    MagpieFilter(min_reward=None, reward_column="judge_score")  # no threshold: nothing to refuse


def test_judge_then_magpie_filter_fails_at_validation():
    from pipelines.errors import SchemaError
    from pipelines.pipeline import StageSpec, validate

    specs = [StageSpec("reward", "reward_score", {}), StageSpec("filter", "magpie_filter", {"min_quality": None, "dedup": False})]
    stages = [(s, s.build()) for s in specs]
    assert "judge_score" in stages[0][1].adds and "instruct_reward" not in stages[0][1].adds
    schema = pa.schema([("id", pa.string()), ("instruction", pa.string()), ("response", pa.string())])
    with pytest.raises(SchemaError, match="instruct_reward"):
        validate(stages, schema)


def test_judge_scores_in_instruct_reward_are_refused_when_they_arrive():
    from pipelines.errors import SchemaError

    t = rows().append_column("reward_model", pa.array(["judge:/models/SmolLM2"] * 7))
    with pytest.raises(SchemaError, match="row 0 .*an LLM judge"):
        MagpieFilter(min_reward=-10).process(t)
    kept, _ = MagpieFilter(min_reward=-10).process(rows().append_column("reward_model", pa.array(["sfairXC/FsfairX-LLaMA3-RM-v0.1"] * 7)))
    assert kept.num_rows == 3
