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
