"""UltraFeedback pieces that need no model: templates, strict parsers (reference formats and
malformed replies), pool assignment and principle sampling, order handling, the 10s fix,
binarization rules on hand-made ratings, and the CPU stages' row accounting."""
from __future__ import annotations

import doctest
import importlib
import re

import numpy as np
import pyarrow as pa
import pytest

from pipelines.errors import ConfigError, ParseError, SchemaError
from synth.judge.ultrafeedback import templates as T
from synth.judge.ultrafeedback.parse import (
    Annotation,
    parse_aspect,
    parse_aspect_json,
    parse_critique,
    parse_critique_json,
    parse_score,
)
from synth.judge.ultrafeedback.pool import (
    COMPLETIONS,
    assign_slots,
    principle_mix,
    sample_principle,
)

MODULES = ["templates", "parse", "seeding", "pool", "annotate", "critique", "binarize", "prompts", "stats"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    mod = importlib.import_module(f"synth.judge.ultrafeedback.{name}")
    res = doctest.testmod(mod)
    assert res.failed == 0 and res.attempted > 0


# -- rendering --------------------------------------------------------------------------------
def test_aspect_prompt_has_the_reference_layout():
    p = T.render_aspect("helpfulness", "Sum 2+2.", ["4", "5", "four", "22"])
    assert p.startswith("# Informativeness / Helpfulness Assessment\n")
    # the format example, then the annotation with the texts in the order given
    fmt, ann = p.split("## Annotation")
    assert "#### Output for Text 4\nType: [List of types]\nRationale: [Rationale]\nRating: [Rating]\nRationale: [Rationale]" in fmt
    assert "Instruction: Sum 2+2.\n\nTexts:\n<text 1> 4\n<text 2> 5\n<text 3> four\n<text 4> 22\n\n### Output\n" in ann
    assert "World Knowledge" not in p
    for level in ("Severely Incorrect", "Partially Incorrect", "Correct", "Highly Informative", "Outstandingly Helpful"):
        assert f"**{level}**" in p


def test_world_knowledge_only_for_truthfulness_and_helpfulness():
    wk = "The question is based on a false premise."
    assert "World Knowledge:\nThe question is based on a false premise.\n\n### Output" in T.render_aspect("truthfulness", "q", ["a", "b"], wk)
    assert "World Knowledge" in T.render_aspect("helpfulness", "q", ["a", "b"], wk)
    assert "World Knowledge" not in T.render_aspect("honesty", "q", ["a", "b"], wk)


def test_system_prompt_counts_texts():
    assert "four text outputs" in T.system_prompt(4) and "The four texts given are independent" in T.system_prompt(4)
    assert "five text outputs" in T.system_prompt(5)


def test_honesty_rubric_allows_na():
    p = T.render_aspect("honesty", "Write a poem.", ["roses"])
    assert "N/A. **Not Applicable**: For creative writing tasks." in p
    assert "Rate outputs 1 to 5 (or \"N/A\")" in p


def test_critique_prompt_notes_the_principle_and_cuts_calibration():
    vc = T.PRINCIPLE_PROMPTS["verbalized_calibration"][0]
    p = T.render_critique("What is 2+2?", "4\nConfidence: 90%", principle="verbalized_calibration", principle_prompt=vc)
    assert "### Instruction\nWhat is 2+2?\nNote: The assistant should state its confidence" in p
    assert "For instance" not in p and "80%" not in p
    assert p.endswith("*Format*\n### Feedback\n[Your feedback]\nOverall Score: [1-10]\n\n---\n\n### Feedback\n")
    again = T.render_critique("q", "a", critique="Too short.")
    assert again.endswith("### Feedback\nToo short.\nOverall Score: \n")


def test_principle_prompts_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("helpfulness: [Be useful.]\n")
    prompts = T.load_principle_prompts(str(f))
    assert prompts["helpfulness"] == ("Be useful.",) and prompts["honesty"] == T.PRINCIPLE_PROMPTS["honesty"]
    with pytest.raises(ConfigError, match="no such file"):
        T.load_principle_prompts(str(tmp_path / "missing.yaml"))


# -- parsing ----------------------------------------------------------------------------------
REFERENCE_IF = """#### Output for Text 1
Rating: 5
Rationale: Fully aligned with the task goal.

#### Output for Text 2
Rating: 2 (Partial Focus)
Rationale: Addresses only the format.

#### Output for Text 3
Rating: 3
Rationale: Meets the goal, but the
rationale runs over two lines.

#### Output for Text 4
Rating: 1
Rationale: Irrelevant."""

REFERENCE_TYPED = """#### Output for Text 1
Type: 1, 2
Rationale: Clear and relevant, with reasoning steps.
Rating: 4
Rationale: Accurate and extensive.

#### Output for Text 2
Type: None
Rationale: Off topic.
Rating: 1
Rationale: Severely incorrect."""


def test_parse_reference_blocks():
    anns = parse_aspect(REFERENCE_IF, "instruction_following", 4)
    assert [a.rating for a in anns] == [5, 2, 3, 1]
    assert anns[2].rationale == "Meets the goal, but the\nrationale runs over two lines."
    typed = parse_aspect(REFERENCE_TYPED, "helpfulness", 2)
    assert typed[0] == Annotation(4, "Accurate and extensive.", (1, 2), "Clear and relevant, with reasoning steps.")
    assert typed[1].types == () and typed[1].rating == 1


@pytest.mark.parametrize(("reply", "aspect", "n", "why"), [
    (REFERENCE_IF, "instruction_following", 3, "expected 3 blocks"),                          # block count differs
    (REFERENCE_IF + "\n\nAnd one more thing.", "instruction_following", 4, "expected 4 blocks"),  # trailing chatter
    ("Rating: 4\nRationale: ok", "instruction_following", 2, "expected 2 blocks"),
    ("Rating: great\nRationale: ok", "honesty", 1, "no integer rating"),
    ("Rating: 7\nRationale: ok", "honesty", 1, "outside 1-5"),
    ("Rating: N/A\nRationale: poem", "instruction_following", 1, "no integer rating"),        # N/A is honesty's only
    ("Rationale: ok\nRating: 4", "honesty", 1, "lacks 'Rating"),
    ("Type: 4\nRationale: x\nRating: 3\nRationale: y", "truthfulness", 1, "identifiers 1-3"),
    ("Rating: 3\nRationale: y", "truthfulness", 1, "lacks 'Type"),
    ("", "helpfulness", 1, "lacks 'Type"),
])
def test_parse_rejects_malformed_replies(reply, aspect, n, why):
    with pytest.raises(ParseError, match=why) as exc:
        parse_aspect(reply, aspect, n)
    assert exc.value.raw == reply  # the whole reply travels with the error, for reject_raw


def test_honesty_na():
    anns = parse_aspect("Rating: N/A\nRationale: A poem.\n\nRating: 3\nRationale: Hedged.", "honesty", 2)
    assert [a.rating for a in anns] == [None, 3]


def test_parse_json_replies():
    good = '{"annotations": [{"type": [1], "type_rationale": "t", "rating": 5, "rationale": "r"}, {"type": [], "type_rationale": "", "rating": 2, "rationale": "s"}]}'
    assert [a.rating for a in parse_aspect_json(good, "truthfulness", 2)] == [5, 2]
    for bad, why in [('{"annotations": []}', "got 0"), ('{"annotations": [{"rating": 5}]}', "got 1"), ("not json", "not valid JSON"),
                     ('{"annotations": [{"type": [9], "rating": 5, "rationale": "r"}, {"type": [], "rating": 2, "rationale": "s"}]}', "identifiers 1-3")]:
        with pytest.raises(ParseError, match=why):
            parse_aspect_json(bad, "truthfulness", 2)


def test_parse_critique_and_scores():
    assert parse_critique("### Feedback\nGood, but cite a source.\nOverall Score: 8") == ("Good, but cite a source.", 8.0)
    assert parse_critique("Fine.\nOverall Score: 7/10.") == ("Fine.", 7.0)
    for bad in ("Fine. Overall Score: 7", "a\nOverall Score: 7\nOverall Score: 8", "a\nOverall Score: none", "a\nOverall Score: 0"):
        with pytest.raises(ParseError):
            parse_critique(bad)
    assert parse_critique_json('{"feedback": "ok", "overall_score": 10}') == ("ok", 10.0)
    assert parse_score(" 10") == 10.0


@pytest.mark.parametrize("aspect", T.ASPECTS)
def test_regex_constrained_replies_always_parse(aspect):
    # what an engine constrained by aspect_regex can produce, the strict parser accepts
    rx = re.compile(T.aspect_regex(aspect, 3, rationale_chars=20))
    typed = aspect in T.TYPED_ASPECTS
    blocks = [f"#### Output for Text {i}\n" + ("Type: None\nRationale: nothing odd\n" if typed else "") + f"Rating: {i + 1}\nRationale: reason {i}" for i in range(1, 4)]
    reply = "\n\n".join(blocks)
    assert rx.fullmatch(reply)
    assert [a.rating for a in parse_aspect(reply, aspect, 3)] == [2, 3, 4]
    assert re.fullmatch(T.critique_regex(feedback_chars=30), "Add one example.\nOverall Score: 9")


def test_schemas_match_the_parsers():
    s = T.aspect_schema("helpfulness", 4)
    item = s["properties"]["annotations"]["items"]
    assert s["properties"]["annotations"]["minItems"] == s["properties"]["annotations"]["maxItems"] == 4
    assert item["required"] == ["type", "type_rationale", "rating", "rationale"]
    assert T.critique_schema()["properties"]["overall_score"] == {"type": "integer", "minimum": 1, "maximum": 10}


# -- pool -------------------------------------------------------------------------------------
def test_slots_split_over_the_pool():
    for key in ("a", "b", "c"):
        many = assign_slots(key, 17, 4, 0)
        assert len(set(many)) == 4 and all(0 <= m < 17 for m in many)  # 4 distinct models, as 4-of-17
        assert sorted(assign_slots(key, 2, 4, 0)) == [0, 0, 1, 1]
        three = assign_slots(key, 3, 4, 0)
        assert sorted(np.bincount(three, minlength=3).tolist()) == [1, 1, 2]
    assert assign_slots("a", 17, 4, 0) != assign_slots("a", 17, 4, 1)


def test_principle_mixtures_follow_the_reference():
    share = principle_mix(["sharegpt"], 5000)
    assert abs(share["helpfulness"] - 0.6) < 0.03 and abs(share["truthfulness"] - 0.2) < 0.03
    assert abs(share["honesty"] - 0.18) < 0.03 and abs(share["verbalized_calibration"] - 0.02) < 0.01
    assert principle_mix(["evol_instruct"], 200) == {"helpfulness": 1.0}
    qa = principle_mix(["truthful_qa"], 4000)
    assert set(qa) == {"honesty", "truthfulness", "verbalized_calibration"} and abs(qa["truthfulness"] - 0.5) < 0.03
    flan = principle_mix(["flan"], 4000)
    assert abs(flan["verbalized_calibration"] - 0.2) < 0.03 and "truthfulness" not in flan
    p, prompt = sample_principle("k", 0, "sharegpt", 0, T.PRINCIPLE_PROMPTS)
    assert prompt in T.PRINCIPLE_PROMPTS[p]


def test_pool_config_errors():
    from synth.judge.ultrafeedback.pool import UFComplete

    with pytest.raises(ConfigError, match="not in pool"):
        UFComplete(label="c", pool=["a", "b"])
    with pytest.raises(ConfigError, match="repeated"):
        UFComplete(label="a", pool=["a", "a"])
    with pytest.raises(ConfigError, match="fallback_source"):
        UFComplete(fallback_source="reddit")
    with pytest.raises(ConfigError, match="completions"):
        UFComplete(completions=0)
    a = UFComplete(label="a", pool=["a", "b"], completions=4)
    b = UFComplete(label="b", pool=["a", "b"], completions=4)
    for key in ("x", "y", "z"):
        assert sorted(a.my_slots(key) + b.my_slots(key)) == [0, 1, 2, 3]  # together they fill every slot once
    assert UFComplete(label="p", pool=["a", "b"], policy=True).my_slots("x") == [4]


# -- judge maths and config -------------------------------------------------------------------
def test_orders_and_consistency():
    from synth.judge.ultrafeedback.annotate import (
        combine_orders,
        map_back,
        shuffled_orders,
    )

    orders = shuffled_orders("row", 4, 24, 0)
    assert len(set(orders)) == 24  # every permutation, no repeats
    shown = [Annotation(r, str(r)) for r in (3, 1, 4, 2)]
    back = map_back(shown, (2, 0, 3, 1))  # text 1 was completion 2, ...
    assert [a.rating for a in back] == [1, 2, 3, 4]
    mean, same = combine_orders(np.array([[5.0, 1.0, np.nan, 3.0], [5.0, 2.0, np.nan, np.nan]]))
    assert mean.tolist()[:2] == [5.0, 1.5] and np.isnan(mean[2]) and mean[3] == 3.0
    assert same.tolist() == [True, False, True, False]


def test_rate_config_errors():
    from synth.judge.ultrafeedback.annotate import UFRate

    with pytest.raises(ConfigError, match="aspects"):
        UFRate(aspects=["harmlessness"])
    with pytest.raises(ConfigError, match="orders must be 1"):
        UFRate(mode="single", orders=2)
    with pytest.raises(ConfigError, match="structured"):
        UFRate(structured="yaml")
    with pytest.raises(ConfigError, match="structured output"):
        UFRate(structured="regex", backend="transformers")
    with pytest.raises(ConfigError, match="orders must be 1"):
        UFRate(shuffle=False, orders=2)
    two = UFRate(orders=2)
    assert "position_consistency" in two.adds and "position_consistency" not in UFRate().adds
    assert UFRate(structured=True).structured == "json"


def test_fix_for_tens():
    from synth.judge.ultrafeedback.critique import fix_action

    assert [fix_action(10, fg) for fg in (1.0, 2.0, 2.5, 4.0, 4.25, None)] == ["flipped", "flipped", "rescored", "rescored", "kept", "kept"]
    assert fix_action(9, 1.0) == "kept"


# -- binarization -----------------------------------------------------------------------------
def _rated(scores: list[list[float | None]], fine: list[list[float | None]] | None = None, texts: list[list[str]] | None = None) -> pa.Table:
    texts = texts or [[f"answer {j}" for j in range(len(s))] for s in scores]
    comps = [[{"model": f"m{j % 2}", "principle": "helpfulness", "system_prompt": "", "text": t} for j, t in enumerate(ts)] for ts in texts]
    return pa.table({
        "id": pa.array([f"r{i}" for i in range(len(scores))]),
        "instruction": pa.array([f"question {i}" for i in range(len(scores))]),
        "completions": pa.array(comps, COMPLETIONS),
        "overall_score": pa.array(scores, pa.list_(pa.float64())),
        "fine-grained_score": pa.array(fine if fine is not None else scores, pa.list_(pa.float64())),
    })


def test_h4_keeps_ties_and_never_pairs_a_completion_with_itself():
    from synth.judge.ultrafeedback.binarize import UFBinarize

    t = _rated([[7.0, 7.0, 3.0, 5.0], [6.0, 6.0, 6.0, 6.0], [9.0, None, 2.0, 4.0], [5.0]])
    kept, rejected = UFBinarize(method="h4").process(t)
    assert kept.num_rows + rejected.num_rows == t.num_rows
    assert rejected.column("reject_reason").to_pylist() == ["too_few_responses"]
    rows = kept.to_pylist()
    assert rows[0]["chosen_index"] == 0 and rows[0]["rejected_index"] in (1, 2, 3)  # first best; a random other
    assert rows[1]["chosen_index"] == 0 and rows[1]["score_chosen"] == rows[1]["score_rejected"] == 6.0  # a tie is still a pair
    assert rows[2]["chosen_index"] == 0 and rows[2]["rejected_index"] in (2, 3)  # the unscored one takes no part
    for r in rows:
        assert r["chosen_index"] != r["rejected_index"]
        assert r["prompt"] == [{"role": "user", "content": r["instruction"]}]
        assert r["chosen"] == [{"role": "assistant", "content": r["completions"][r["chosen_index"]]["text"]}]
        assert r["rejected"][0]["content"] == r["completions"][r["rejected_index"]]["text"]
        assert r["messages"] == r["prompt"] + r["chosen"]
        assert r["score_chosen"] == r["overall_score"][r["chosen_index"]]
        assert r["chosen_model"] == r["completions"][r["chosen_index"]]["model"]
        assert len(r["prompt_id"]) == 64
    again, _ = UFBinarize(method="h4").process(t)
    assert again.column("rejected_index").to_pylist() == kept.column("rejected_index").to_pylist()  # seeded


def test_h4_rejected_is_uniform_over_the_others():
    from synth.judge.ultrafeedback.binarize import pick_pair

    rng = np.random.default_rng(0)
    picks = [pick_pair("h4", [9.0, 5.0, 5.0, 1.0], list("abcd"), rng)[1] for _ in range(3000)]
    counts = np.bincount(picks, minlength=4)
    assert counts[0] == 0 and all(abs(c / 3000 - 1 / 3) < 0.04 for c in counts[1:])


def test_argilla_uses_mean_rating_and_drops_ties():
    from synth.judge.ultrafeedback.binarize import UFBinarize

    t = _rated([[10.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], fine=[[3.0, 4.5, 2.0], [4.0, 4.0, 4.0], [4.0, 4.0, 3.0]])
    kept, rejected = UFBinarize(method="argilla").process(t)
    assert rejected.column("reject_reason").to_pylist() == ["tie"] and rejected.column("id").to_pylist() == ["r1"]
    rows = {r["id"]: r for r in kept.to_pylist()}
    assert rows["r0"]["chosen_index"] == 1 and rows["r0"]["score_chosen"] == 4.5  # by mean rating, not the overall 10
    assert rows["r0"]["score_rejected"] < 4.5
    assert rows["r2"]["chosen_index"] == 0 and rows["r2"]["rejected_index"] == 2  # only the strictly lower one
    with pytest.raises(ConfigError, match="argilla"):
        UFBinarize(method="argilla", score_key="overall_score")


def test_max_min():
    from synth.judge.ultrafeedback.binarize import UFBinarize

    t = _rated([[1.0, 1.0]], fine=[[2.0, 4.0]])
    kept, _ = UFBinarize(method="max-min").process(t)
    assert (kept.column("chosen_index")[0].as_py(), kept.column("rejected_index")[0].as_py()) == (1, 0)
    t = _rated([[3.0, 8.0, 1.0, 8.0]])
    kept, _ = UFBinarize(method="max-min", score_key="overall_score").process(t)
    assert (kept.column("chosen_index")[0].as_py(), kept.column("rejected_index")[0].as_py()) == (1, 2)
    _, rej = UFBinarize(method="max-min").process(_rated([[5.0, 5.0]]))
    assert rej.column("reject_reason").to_pylist() == ["tie"]
    _, rej = UFBinarize(method="h4").process(_rated([[5.0, 9.0]], texts=[["ok", "  "]]))
    assert rej.column("reject_reason").to_pylist() == ["too_few_responses"]  # a blank completion is no answer


def test_binarized_rows_load_as_trl_preference_data():
    """What TRL's DPOTrainer expects (trl/data_utils.py): ``prompt``, ``chosen``, ``rejected``
    as lists of {role, content} messages, the prompt ending on a user turn, chosen/rejected
    one assistant turn each (``is_conversational`` / ``maybe_apply_chat_template``)."""
    import datasets

    from synth.judge.ultrafeedback.binarize import UFBinarize

    kept, _ = UFBinarize().process(_rated([[7.0, 3.0], [2.0, 9.0]]))
    ds = datasets.Dataset(kept)
    feat = ds.features
    for col in ("prompt", "chosen", "rejected"):
        assert isinstance(feat[col], (datasets.List, datasets.Sequence, list)), feat[col]
        inner = feat[col].feature if hasattr(feat[col], "feature") else feat[col][0]
        assert set(inner) == {"role", "content"}
    for row in ds:
        assert row["prompt"][-1]["role"] == "user"
        assert [m["role"] for m in row["chosen"]] == [m["role"] for m in row["rejected"]] == ["assistant"]
        assert isinstance(row["score_chosen"], float) and row["score_chosen"] > row["score_rejected"]


# -- other CPU stages -------------------------------------------------------------------------
def test_prompt_stage_maps_mt_bench_turns(shared_data):
    from pipelines.inputs import read_input
    from synth.judge.ultrafeedback.prompts import UFPrompt

    t = read_input(shared_data / "seeds" / "mt_bench_question.jsonl", limit=5)
    t = t.append_column("id", pa.array([str(i) for i in range(t.num_rows)]))
    st = UFPrompt()
    assert "instruction" in st.output_schema(t.schema).names
    kept, rejected = st.process(t)
    assert kept.num_rows == 5 and rejected.num_rows == 0
    assert kept.column("instruction").to_pylist() == [turns[0] for turns in t.column("turns").to_pylist()]
    blank = pa.table({"turns": pa.array([["  "], [], ["hi", "more"]], pa.list_(pa.string()))})
    kept, rejected = st.process(blank)
    assert kept.column("instruction").to_pylist() == ["hi"] and rejected.column("reject_reason").to_pylist() == ["empty_prompt", "empty_prompt"]
    with pytest.raises(SchemaError, match="no prompt column"):
        st.output_schema(pa.schema([("question", pa.int64())]))


def test_rating_stats_per_model():
    from synth.judge.ultrafeedback.stats import UFRatingStats

    t = _rated([[8.0, 2.0, 6.0, None]])
    st = UFRatingStats(models=["m0", "m1", "m9"], scores=["overall_score"])
    kept, rejected = st.process(t)
    assert rejected.num_rows == 0 and kept.num_rows == 1
    assert kept.column("overall_score__m0").to_pylist() == [7.0]  # completions 0 and 2
    assert kept.column("overall_score__m1").to_pylist() == [2.0]  # completion 3 unscored
    assert kept.column("overall_score__m9").to_pylist() == [None]
    empty, _ = st.process(t.slice(0, 0))
    assert set(st.adds) <= set(empty.column_names)


def test_recipe_validates_on_mt_bench(shared_data):
    from pipelines.pipeline import specs_from_recipe, validate
    from pipelines.recipe import load_recipe
    from pipelines.source import Source

    r = load_recipe("ultrafeedback-prefs")
    src = Source(r["source"], seed=0, input_path=str(shared_data / "seeds" / "mt_bench_question.jsonl"), limit=3)
    built = [(spec, spec.build()) for spec in specs_from_recipe(r)]
    final = validate(built, src.table().schema)[-1]
    assert {"prompt", "chosen", "rejected", "score_chosen", "score_rejected", "rating_helpfulness", "overall_score", "rating_honesty__pool_a"} <= set(final.names)
    pools = [s for _, s in built if type(s).__name__ == "UFComplete"]
    assert len(pools) >= 2 and {p.label for p in pools} == {"pool_a", "pool_b"}
    # AlpacaEval keeps its prompts in `instruction`: the same recipe takes it unchanged
    src = Source(r["source"], seed=0, input_path=str(shared_data / "seeds" / "alpaca_eval_805_example_outputs.json"), limit=3)
    validate(built, src.table().schema)
