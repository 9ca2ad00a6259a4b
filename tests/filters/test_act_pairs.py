"""ActPairs (filters/verify/act_pairs.py) on hand-made rows: exact picks, CSRs and reasons;
rows in = kept + rejected; and the CPU half of the act-prefs recipe (verify -> pairs)."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from filters.verify.act_pairs import ActPairs
from filters.verify.verify_constraints import VerifyConstraints
from pipelines.chat_format import MESSAGES
from pipelines.errors import ConfigError
from pipelines.pairs import best_and_worst
from pipelines.stage import REASON


def rows(responses: list[list[str]], csrs: list[list[float]]) -> pa.Table:
    n = len(responses)
    return pa.table({
        "id": [str(i) for i in range(n)],
        "instruction": [f"prompt {i}" for i in range(n)],
        "responses": pa.array(responses, pa.list_(pa.string())),
        "constraint_satisfaction": pa.array(csrs, pa.list_(pa.float64())),
        "instruction_id_list": [["punctuation:no_comma"]] * n,
    })


def run(stage: ActPairs, t: pa.Table) -> tuple[pa.Table, pa.Table]:
    kept, rejected = stage.process(t)
    assert kept.num_rows + rejected.num_rows == t.num_rows
    return kept, rejected


def test_best_against_worst_first_on_ties():
    t = rows([["a", "b", "c", "d"]], [[0.5, 1.0, 0.0, 1.0]])
    kept, rejected = run(ActPairs(), t)
    assert rejected.num_rows == 0
    row = kept.to_pylist()[0]
    assert row["prompt"] == [{"role": "user", "content": "prompt 0"}]
    assert row["chosen"] == [{"role": "assistant", "content": "b"}]
    assert row["rejected"] == [{"role": "assistant", "content": "c"}]
    assert (row["csr_chosen"], row["csr_rejected"]) == (1.0, 0.0)
    assert row["messages"] == row["prompt"] + row["chosen"]
    # the verification columns stay
    assert row["constraint_satisfaction"] == [0.5, 1.0, 0.0, 1.0] and row["instruction_id_list"] == ["punctuation:no_comma"]
    assert kept.schema.field("chosen").type == MESSAGES


def test_first_lowest_on_ties():
    assert best_and_worst([0.0, 1.0, 0.0], ["a", "b", "c"]) == (1, 0)
    assert best_and_worst([1.0, 0.5, 1.0], ["a", "b", "c"]) == (0, 1)


def test_reasons():
    t = rows(
        [["a", "b"], ["a", "b", "c"], ["a", "b"], ["a", ""], ["", "b", "c"]],
        [[0.5, 0.5], [1.0, 0.75, 0.5], [0.75, 0.5], [1.0, 0.0], [1.0, 0.5, 0.0]],
    )
    kept, rejected = run(ActPairs(min_margin=0.5), t)
    assert kept.column("id").to_pylist() == ["1", "4"]
    assert kept.column("csr_chosen").to_pylist() == [1.0, 0.5]  # blank responses take no part
    assert kept.column("csr_rejected").to_pylist() == [0.5, 0.0]
    assert dict(zip(rejected.column("id").to_pylist(), rejected.column(REASON).to_pylist())) == {"0": "tie", "2": "low_margin", "3": "too_few_responses"}


def test_default_margin_keeps_any_difference():
    kept, rejected = run(ActPairs(), rows([["a", "b"], ["a", "b"]], [[0.75, 0.5], [0.25, 0.25]]))
    assert kept.column("id").to_pylist() == ["0"]
    assert rejected.column(REASON).to_pylist() == ["tie"]


@pytest.mark.parametrize("margin", [-0.1, 1.5, "0.3", True])
def test_bad_margin(margin):
    with pytest.raises(ConfigError):
        ActPairs(min_margin=margin)


def test_verify_then_pairs():
    t = pa.table({
        "id": ["p0", "p1"],
        "instruction": ["Give a title in <<>> and no commas.", "Say hi without commas."],
        "responses": [["<<T>> hi there", "hi, there", "<<T>> hi, there"], ["hi", "hello"]],
        "instruction_id_list": [["detectable_format:title", "punctuation:no_comma"], ["punctuation:no_comma"]],
        "kwargs": [json.dumps([{}, {}]), json.dumps([{}])],
    })
    verified, none = VerifyConstraints(column="responses").process(t)
    assert none.num_rows == 0
    assert verified.column("constraint_satisfaction").to_pylist() == [[1.0, 0.0, 0.5], [1.0, 1.0]]
    kept, rejected = run(ActPairs(), verified)
    assert kept.column("id").to_pylist() == ["p0"] and rejected.column(REASON).to_pylist() == ["tie"]
    row = kept.to_pylist()[0]
    assert row["chosen"][0]["content"] == "<<T>> hi there" and row["rejected"][0]["content"] == "hi, there"
    assert row["follow_instruction_list"] == [[True, True], [False, False], [True, False]]
