"""The UltraFeedback judge and critique stages with the embedded SmolLM2 (real replies): two
orders averaged with position consistency recorded, single-completion rating, strict parsing
with re-asks ending in rejected rows, and the critique with the 10s fix. Hand-written
completions, so no pool generation; short replies (engine-constrained to the reference's
text format where a parse must succeed)."""
from __future__ import annotations

import pyarrow as pa
import pytest

from synth.judge.ultrafeedback.pool import COMPLETIONS

pytestmark = [pytest.mark.model, pytest.mark.slow]

ENGINE = {"max_model_len": 4096}  # the key judge-eval's default uses too: one engine per process


@pytest.fixture(scope="module")
def rated_input() -> pa.Table:
    def comp(text: str, model: str, principle: str = "helpfulness") -> dict[str, str]:
        return {"model": model, "principle": principle, "system_prompt": "Be helpful.", "text": text}

    return pa.table({
        "id": pa.array(["q1", "q2"]),
        "instruction": pa.array(["What is the capital of France?", "Write a haiku about rain."]),
        "completions": pa.array([
            [comp("Paris.", "a"), comp("The capital of France is Lyon.", "b"), comp("I am not sure, perhaps Paris.", "a", "honesty")],
            [comp("Soft rain on the roof / the garden drinks in silence / puddles hold the sky", "a"), comp("Rain is water.", "b"), comp("It rains.", "b")],
        ], COMPLETIONS),
    })


@pytest.fixture(scope="module")
def two_orders(rated_input):
    from synth.judge.ultrafeedback.annotate import UFRate

    st = UFRate(engine=ENGINE, aspects=["helpfulness"], orders=2, structured="regex", rationale_chars=12, max_retries=1, sampling={"max_tokens": 130})
    return st, *st.process(rated_input)


def test_two_orders_average_and_record_consistency(rated_input, two_orders):
    _, kept, rejected = two_orders
    assert kept.num_rows + rejected.num_rows == rated_input.num_rows
    assert kept.num_rows >= 1, rejected.column("reject_raw").to_pylist()
    for row in kept.to_pylist():
        n = len(row["completions"])
        assert len(row["rating_helpfulness"]) == len(row["rationale_helpfulness"]) == len(row["types_helpfulness"]) == len(row["fine-grained_score"]) == n
        for r in row["rating_helpfulness"]:
            assert 1.0 <= r <= 5.0 and (2 * r).is_integer()  # the mean of two 1-5 ratings
        assert 0.0 <= row["position_consistency"] <= 1.0
        assert row["judge_replies"] >= 2  # 2 orders, plus any re-asks


def test_single_mode_rates_each_completion_alone(rated_input):
    from synth.judge.ultrafeedback.annotate import UFRate

    st = UFRate(engine=ENGINE, aspects=["instruction_following"], mode="single", structured="regex", rationale_chars=16, max_retries=0, sampling={"max_tokens": 40})
    kept, rejected = st.process(rated_input)
    assert kept.num_rows == 2 and rejected.num_rows == 0  # constrained replies always parse
    assert kept.column("judge_replies").to_pylist() == [3, 3]  # one call per completion
    assert all(len(r) == 3 for r in kept.column("rating_instruction_following").to_pylist())


def test_unparseable_replies_are_retried_then_rejected(rated_input):
    from synth.judge.ultrafeedback.annotate import UFRate

    # 6 new tokens can never hold three rating blocks: every reply fails the strict parse
    st = UFRate(engine=ENGINE, aspects=["honesty"], structured=False, max_retries=1, sampling={"max_tokens": 6})
    kept, rejected = st.process(rated_input)
    assert kept.num_rows == 0 and rejected.num_rows == 2
    assert rejected.column("reject_reason").to_pylist() == ["parse_error:honesty"] * 2
    assert all(raw is not None for raw in rejected.column("reject_raw").to_pylist())  # the raw reply is kept
    assert rejected.column("judge_replies").to_pylist() == [2, 2]  # first ask + one re-ask
    assert rejected.column("judge_parse_failures").to_pylist() == [2, 2]


def test_critique_scores_every_completion_and_fixes_tens(two_orders):
    from synth.judge.ultrafeedback.critique import UFCritique

    _, rated, _ = two_orders
    st = UFCritique(engine=ENGINE, structured="regex", feedback_chars=30, max_retries=1, sampling={"max_tokens": 24})
    kept, rejected = st.process(rated)
    assert kept.num_rows + rejected.num_rows == rated.num_rows
    for row in kept.to_pylist():
        n = len(row["completions"])
        assert len(row["critique"]) == len(row["overall_score"]) == len(row["overall_fix"]) == n
        for score, fix, fg in zip(row["overall_score"], row["overall_fix"], row["fine-grained_score"]):
            assert 1.0 <= score <= 10.0 and fix in ("kept", "flipped", "rescored")
            if fix == "flipped":
                assert score == 1.0 and fg <= 2
            if score == 10.0:
                assert fix == "rescored" or fg is None or fg > 4  # a surviving 10 was re-asked or earned
