"""VerifyConstraints (filters/verify/verify_constraints.py) on hand-made rows: exact verdicts,
CSRs and reasons; rows in = kept + rejected."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from filters.verify.verify_constraints import (
    VerifyConstraints,
    parse_kwargs,
    verify_constraints,
)
from pipelines.errors import ConfigError
from pipelines.inputs import read_input
from pipelines.stage import RAW, REASON

TITLE, NO_COMMA, WORDS3 = "detectable_format:title", "punctuation:no_comma", "length_constraints:number_words"


def table(**cols) -> pa.Table:
    n = len(next(iter(cols.values())))
    cols.setdefault("id", [str(i) for i in range(n)])
    cols.setdefault("instruction", ["Write something."] * n)
    return pa.table(cols)


def run(stage: VerifyConstraints, t: pa.Table) -> tuple[pa.Table, pa.Table]:
    kept, rejected = stage.process(t)
    assert kept.num_rows + rejected.num_rows == t.num_rows
    return kept, rejected


def test_single_response_with_json_kwargs():
    t = table(
        response=["<<T>> hello big world", "hello, world", ""],
        instruction_id_list=[[TITLE, NO_COMMA, WORDS3]] * 3,
        kwargs=[json.dumps([{}, {}, {"num_words": 3, "relation": "at least"}])] * 3,
    )
    kept, rejected = run(VerifyConstraints(), t)
    assert rejected.num_rows == 0
    assert kept.column("follow_instruction_list").to_pylist() == [[True, True, True], [False, False, False], [False, False, False]]
    assert kept.column("constraint_satisfaction").to_pylist() == [1.0, 0.0, 0.0]
    assert kept.schema.field("constraint_satisfaction").type == pa.float64()


def test_list_of_struct_kwargs_as_read_from_an_ifeval_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [
        {"prompt": "Say hi.", "instruction_id_list": [NO_COMMA, WORDS3], "kwargs": [{}, {"relation": "less than", "num_words": 3}], "response": "hi there"},
        {"prompt": "Name one.", "instruction_id_list": ["keywords:existence"], "kwargs": [{"keywords": ["cat"]}], "response": "a dog"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    t = read_input(path, columns={"instruction": "prompt"})
    assert pa.types.is_struct(t.schema.field("kwargs").type.value_type)  # every kwarg name, None where unused
    kept, _ = run(VerifyConstraints(), t)
    assert kept.column("follow_instruction_list").to_pylist() == [[True, True], [False]]
    assert kept.column("constraint_satisfaction").to_pylist() == [1.0, 0.0]


def test_responses_list_column():
    t = table(
        responses=[["<<T>> a, b", "<<T>> ab", "x", ""]],
        instruction_id_list=[[NO_COMMA, TITLE]],
        kwargs=[json.dumps([{}, {}])],
    )
    stage = VerifyConstraints(column="responses")
    assert stage.adds["constraint_satisfaction"] == pa.list_(pa.float64())
    kept, _ = run(stage, t)
    assert kept.column("follow_instruction_list").to_pylist() == [[[False, True], [True, True], [True, False], [False, False]]]
    assert kept.column("constraint_satisfaction").to_pylist() == [[0.5, 1.0, 0.5, 0.0]]


def test_ifeval_and_ifbench_ids_in_one_row():
    t = table(response=["no,spaces"], instruction_id_list=[[NO_COMMA, "format:no_whitespace", "count:numbers"]], kwargs=[json.dumps([{}, {}, {"N": 0}])])
    kept, _ = run(VerifyConstraints(), t)
    assert kept.column("follow_instruction_list").to_pylist() == [[False, True, True]]
    assert kept.column("constraint_satisfaction").to_pylist() == [pytest.approx(2 / 3)]


def test_loose_mode_forgives_a_preamble_line():
    t = table(response=['Sure:\n"quoted answer"'], instruction_id_list=[["startend:quotation"]], kwargs=[json.dumps([{}])])
    strict, _ = run(VerifyConstraints(), t)
    loose, _ = run(VerifyConstraints(mode="loose"), t)
    assert strict.column("constraint_satisfaction").to_pylist() == [0.0]
    assert loose.column("constraint_satisfaction").to_pylist() == [1.0]


def test_prompt_column_reaches_the_checkers():
    t = pa.table({"id": ["0"], "question": ["Repeat me"], "response": ["Repeat me. Done."], "instruction_id_list": [["combination:repeat_prompt"]], "kwargs": [json.dumps([{"prompt_to_repeat": "Repeat me"}])]})
    kept, _ = run(VerifyConstraints(prompt_column="question"), t)
    assert kept.column("constraint_satisfaction").to_pylist() == [1.0]


def test_reject_failed():
    t = table(
        response=["<<T>> ab", "<<T>> a, b", "a, b"],
        instruction_id_list=[[TITLE, NO_COMMA]] * 3,
        kwargs=[json.dumps([{}, {}])] * 3,
    )
    kept, rejected = run(VerifyConstraints(), t)
    assert kept.num_rows == 3  # never rejects by default
    kept, rejected = run(VerifyConstraints(reject_failed=True), t)
    assert kept.column("id").to_pylist() == ["0"]
    assert rejected.column("id").to_pylist() == ["1", "2"]
    assert rejected.column(REASON).to_pylist() == [f"constraint_failed:{NO_COMMA}", f"constraint_failed:{TITLE}"]


def test_reject_failed_on_responses_uses_the_best_response():
    t = table(responses=[["a, b", "<<T>> a, b"], ["a, b", "<<T>> ab"]], instruction_id_list=[[TITLE, NO_COMMA]] * 2, kwargs=[json.dumps([{}, {}])] * 2)
    kept, rejected = run(VerifyConstraints(column="responses", reject_failed=True), t)
    assert kept.column("id").to_pylist() == ["1"]
    assert rejected.column(REASON).to_pylist() == [f"constraint_failed:{NO_COMMA}"]


def test_rows_without_usable_constraints_are_rejected():
    t = table(
        response=["x", "x", "x", "x"],
        instruction_id_list=[[], ["no:such_id"], [WORDS3], [TITLE]],
        kwargs=["[]", "[{}]", json.dumps([{"num_words": 3}]), "{not json"],
    )
    kept, rejected = run(VerifyConstraints(), t)
    assert kept.num_rows == 0
    assert rejected.column(REASON).to_pylist() == ["no_constraints", "invalid_constraint:no:such_id", f"invalid_constraint:{WORDS3}", "invalid_constraint:kwargs"]
    raw = rejected.column(RAW).to_pylist()
    assert raw[0] is None and "no:such_id" in raw[1] and "relation" in raw[2]


def test_parse_kwargs_forms():
    assert parse_kwargs(None, 2) == [{}, {}]
    assert parse_kwargs(['{"N": 3}', ""], 2) == [{"N": 3}, {}]
    assert parse_kwargs([{"a": None, "b": 1}, None], 2) == [{"b": 1}, {}]
    with pytest.raises(ConfigError):
        parse_kwargs("[{}]", 2)
    with pytest.raises(ConfigError):
        parse_kwargs({"a": 1}, 1)


def test_verify_constraints_unknown_id():
    with pytest.raises(ConfigError, match="neither"):
        verify_constraints("x", "", ["nope"], [{}])


def test_columns_and_bad_params():
    stage = VerifyConstraints(column="answers", multiple=True, prompt_column="prompt_text")
    assert set(stage.requires) == {"answers", "prompt_text", "instruction_id_list", "kwargs"}
    assert stage.requires["answers"] == pa.list_(pa.string())
    with pytest.raises(ConfigError):
        VerifyConstraints(mode="lenient")
    with pytest.raises(ConfigError):
        VerifyConstraints(reject_failed="yes")
