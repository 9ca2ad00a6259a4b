"""CodecLM without a model: parsers (malformed replies included), the metadata pool and
its sampler, the judge's both-order arithmetic, and the round loop's control flow driven by
a scripted judge (hand-made score columns fed to the real ``codeclm_decide``)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from pipelines.errors import AligncraftError, ConfigError, ParseError
from pipelines.stage import RAW, REASON
from synth.codeclm.crr import crr, match_answers, pair_verdict
from synth.codeclm.decide import CodecDecide, outcome, winner
from synth.codeclm.improve import sample_action
from synth.codeclm.judge import both_orders, judge_texts
from synth.codeclm.metadata import CodecMetadata, allocate, build_pool, metadata_id
from synth.codeclm.parse import parse_improved, parse_metadata, parse_numbered_list, parse_rubrics, parse_score_pair
from synth.codeclm.respond import CodecRespond
from synth.codeclm.state import ACCEPTED, LINEAGE, PENDING, update_pending


# -- parsers ------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("Use case: code generation\nSkills: python, recursion", ("code generation", ["python", "recursion"])),
    ("use case: Poetry.\nskills: rhyme", ("Poetry", ["rhyme"])),
    ("Task: translation\nSkills: french , english, ", ("translation", ["french", "english"])),
    ("Sure!\nUSE CASE: math\nSKILLS: algebra, Algebra, geometry\nUse case: other", ("math", ["algebra", "geometry"])),
])
def test_parse_metadata_accepts_the_paper_formats(text, expected):
    assert parse_metadata(text) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("", "no 'Use case:'"),
    ("The use case is cooking; skills: baking", "no 'Use case:'"),
    ("Use case:\nSkills: a", "empty use case"),
    ("Use case: cooking", "no 'Skills:'"),
    ("Use case: cooking\nUse case: baking\nSkills: flour", "no 'Skills:'"),  # the skills belong to another example
    ("Use case: cooking\nSkills: , ,", "no skills"),
    ("Use case: cooking\nSkills: a, b, c, d", "4 skills, at most 3"),
])
def test_parse_metadata_rejects_malformed_replies(text, why):
    with pytest.raises(ParseError, match=why):
        parse_metadata(text)


def test_parse_numbered_list_reads_only_one_consecutive_list():
    text = "Here are two:\n\n1. Write a story\nabout a cat.\n\n2) Plan a week of meals.\n1. A second list\n"
    assert parse_numbered_list(text) == ["Write a story about a cat.", "Plan a week of meals."]
    assert parse_numbered_list("3. no\n1. yes") == ["yes"]  # numbering must start at 1
    for bad in ("", "Write a story.", "- a bullet\n- another", "2. starts at two"):
        with pytest.raises(ParseError):
            parse_numbered_list(bad)


def test_parse_rubrics_pairs_rubrics_with_actions():
    reply = "**Rubrics:**\n1. depth\n2. constraints\n3. steps\n4. domain\n5. extra\n\n## Actions\n1. ask why\n2. add a limit\n3. chain steps\n4. use jargon"
    rubrics, actions = parse_rubrics(reply)
    assert rubrics == ["depth", "constraints", "steps", "domain"]  # the first 4
    assert actions == ["ask why", "add a limit", "chain steps", "use jargon"]
    for bad in ("1. depth\n2. x", "Rubrics:\n1. a\n2. b\n3. c\n4. d\nActions:\n1. a\n2. b\n3. c", "Rubrics: none\nActions: none"):
        with pytest.raises(ParseError):
            parse_rubrics(bad)


def test_parse_improved_and_score_pair_malformed():
    assert parse_improved("Improved instruction:\n'Write a villanelle.'") == "Write a villanelle."
    for bad in ("Improved instruction:   ", "Just write it."):
        with pytest.raises(ParseError):
            parse_improved(bad)
    assert parse_score_pair("10 1") == (10.0, 1.0)
    for bad in ("", "8", "8 6 4", "eight six", "11 3", "Assistant 1 gets 8, Assistant 2 gets 6"):
        with pytest.raises(ParseError):
            parse_score_pair(bad)


# -- metadata pool and samplers ---------------------------------------------------------
SEEDS = [
    {"id": "s1", "instruction": "Sort a list in Python.", "use_case": "code generation", "skills": ["python", "sorting"]},
    {"id": "s2", "instruction": "Write a haiku.", "use_case": "creative writing", "skills": ["poetry"]},
    {"id": "s3", "instruction": "Write a limerick.", "use_case": "creative writing", "skills": ["poetry", "humor"]},
    {"id": "s4", "instruction": "Sort numbers.", "use_case": "code generation", "skills": ["Python", "Sorting"]},  # same metadata as s1
]


def test_pool_keeps_seed_metadata_then_mixes_to_size():
    pool = build_pool(SEEDS, size=20, seed=0)
    assert len(pool) == 20
    assert [p["metadata_origin"] for p in pool[:3]] == ["seed"] * 3  # s4 is s1's metadata
    assert len({p["metadata_id"] for p in pool}) == 20
    union = {"python", "sorting", "poetry", "humor"}
    for p in pool[3:]:
        assert p["metadata_origin"] == "mixed"
        assert p["use_case"] in {"code generation", "creative writing"}
        assert 1 <= len(p["skills"]) <= 3 and set(p["skills"]) <= union and len(set(p["skills"])) == len(p["skills"])
        donor = next(s for s in SEEDS if s["id"] == p["seed_id"])
        assert donor["use_case"] == p["use_case"] and p["seed_instruction"] == donor["instruction"]
    assert build_pool(SEEDS, size=20, seed=0) == pool
    assert build_pool(SEEDS, size=20, seed=1) != pool


def test_pool_stops_when_combinations_run_out():
    one = [{"id": "a", "instruction": "x", "use_case": "chat", "skills": ["empathy"]}]
    assert len(build_pool(one, size=200, seed=0)) == 1  # only (chat, empathy) exists
    two = [{"id": "a", "instruction": "x", "use_case": "chat", "skills": ["a", "b"]}]
    assert len(build_pool(two, size=200)) == 3  # {a}, {b}, {a, b}


def test_allocate_gives_every_metadata_an_equal_share():
    counts = np.bincount(allocate(2000, 200, seed=3), minlength=200)
    assert counts.min() == counts.max() == 10
    counts = np.bincount(allocate(205, 200, seed=3), minlength=200)
    assert sorted(Counter(counts.tolist()).items()) == [(1, 195), (2, 5)]


def test_metadata_stage_makes_num_rows_slots_and_accounts_for_every_seed():
    from pipelines.stage import check_rows

    t = pa.table({"id": [s["id"] for s in SEEDS], "instruction": [s["instruction"] for s in SEEDS], "use_case": [s["use_case"] for s in SEEDS], "skills": [s["skills"] for s in SEEDS], "extra": [1, 2, 3, 4]})
    stage = CodecMetadata(size=8, num_rows=24, seed=0)
    kept, rejected = stage.process(t)
    assert kept.num_rows == 24  # more slots than seeds: 3 per metadata
    assert kept.schema.equals(stage.output_schema(t.schema))
    assert sorted(Counter(kept.column("metadata_id").to_pylist()).values()) == [3] * 8
    assert len(set(kept.column("id").to_pylist())) == 24 and not set(kept.column("id").to_pylist()) & {"s1", "s2", "s3", "s4"}
    assert all(metadata_id(u, s) == m for u, s, m in zip(*(kept.column(c).to_pylist() for c in ("use_case", "skills", "metadata_id"))))
    # s4 has s1's metadata: s1's slots stand for it, unless s4 lent its use case to a mix
    used = set(kept.column("seed_id").to_pylist())
    assert {"s1", "s2", "s3"} <= used
    assert rejected.column("reject_reason").to_pylist() == ([] if "s4" in used else ["duplicate_metadata:s1"])
    assert check_rows(t, kept, rejected, stage.parent) == len(used)
    # a rerun (a resume) makes the same slots with the same ids
    assert stage.process(t)[0].equals(kept)
    # fewer slots than metadata: the seeds no slot drew are rejected, with why
    kept, rejected = CodecMetadata(size=8, num_rows=2, seed=0).process(t)
    assert kept.num_rows == 2 and check_rows(t, kept, rejected, "seed_id") + rejected.num_rows == 4
    assert set(rejected.column("reject_reason").to_pylist()) <= {"metadata_unused", "duplicate_metadata:s1"}
    # default: one slot per seed row
    assert CodecMetadata(size=8, seed=0).process(t)[0].num_rows == 4
    for bad in ({"size": 0}, {"num_rows": 0}, {"num_rows": "10"}):
        with pytest.raises(ConfigError):
            CodecMetadata(**bad)


def test_sample_action_is_seeded_and_uniform():
    actions = ["a", "b", "c", "d"]
    draws = Counter(sample_action(actions, s) for s in range(4000))
    assert set(draws) == set(actions) and min(draws.values()) > 850
    assert sample_action(actions, 11) == sample_action(actions, 11)
    with pytest.raises(ValueError):
        sample_action([], 0)


# -- judging arithmetic -----------------------------------------------------------------
def test_both_orders_cancels_position_bias():
    # a judge that always gives Assistant 1 two extra points: the averages see through it
    assert both_orders((9, 5), (7, 7)) == (8.0, 6.0)
    assert judge_texts("6 6", "6 6") == (6.0, 6.0)
    with pytest.raises(ParseError):
        judge_texts("8 6", "no idea")


def test_winner_threshold_is_strict():
    assert [winner(g, 3) for g in (3.5, 3.0, -3.0, -3.5, 0)] == ["strong", None, None, "target", None]
    assert outcome(None, 5, theta=3, last=False, strong="", target="x") == ("empty_response:strong", "strong", "empty_response:strong")


def test_crr_needs_both_orders():
    assert pair_verdict((8, 6), (6, 8)) == "a"  # A ahead in both orders
    assert pair_verdict((8, 6), (8, 6)) == "tie"  # Assistant 1 always wins: position, not quality
    assert crr(["a", "tie", "b", "tie"]) == 0.75
    assert crr([]) == 0.0
    with pytest.raises(AligncraftError, match="not found"):
        match_answers([("q", "x")], [("other", "y")])


# -- the loop, with a scripted judge --------------------------------------------------------
def slots(n: int) -> pa.Table:
    return pa.table({
        "id": [f"row{i}" for i in range(n)],
        "instruction": [f"basic {i}" for i in range(n)],
        "codeclm_status": [PENDING] * n,
        "codeclm_round": pa.array([1] * n, pa.int64()),
        "action": pa.nulls(n, pa.string()),
        "codeclm_error": pa.nulls(n, pa.string()),
        "lineage": pa.array([[] for _ in range(n)], LINEAGE),
    })


def scripted_round(table: pa.Table, rnd: int, script: dict[str, tuple[float, float] | str]) -> pa.Table:
    """What a round's model stages write, for the pending rows, with scores from ``script``
    (row id -> (strong score, target score), or an error string)."""
    ids = table.column("id").to_pylist()
    status = table.column("codeclm_status").to_pylist()
    pend = [i for i, s in enumerate(status) if s == PENDING]
    if rnd > 1:
        ins = table.column("instruction").to_pylist()
        table = update_pending(table, "instruction", [f"{ins[i]} +r{rnd}" for i in pend], pa.string())
        table = update_pending(table, "action", [f"action {rnd}" for _ in pend], pa.string())
        table = update_pending(table, "codeclm_round", [rnd] * len(pend), pa.int64())
    table = update_pending(table, "response_strong", [f"strong answer {ids[i]} r{rnd}" for i in pend], pa.string())
    table = update_pending(table, "response_target", [f"target answer {ids[i]} r{rnd}" for i in pend], pa.string())
    got = [script[ids[i]] for i in pend]
    scores = [g if isinstance(g, tuple) else (None, None) for g in got]
    table = update_pending(table, "score_strong", [s[0] for s in scores], pa.float64())
    table = update_pending(table, "score_target", [s[1] for s in scores], pa.float64())
    table = update_pending(table, "gap", [None if s[0] is None else s[0] - s[1] for s in scores], pa.float64())
    table = update_pending(table, "judge_raw", [f"raw {ids[i]}" for i in pend], pa.string())
    return update_pending(table, "codeclm_error", [g if isinstance(g, str) else None for g in got], pa.string())


def test_loop_control_flow_with_a_scripted_judge():
    scripts = {  # per round: row -> (S(r_s), S(r_t)) or an error
        1: {"row0": (9.0, 4.0), "row1": (6.0, 5.0), "row2": (5.0, 5.0), "row3": (7.0, 6.0), "row4": (8.0, 8.0)},
        2: {"row1": (2.0, 8.5), "row2": (6.0, 4.0), "row3": "parse_error:judge", "row4": (7.5, 7.0)},
        3: {"row2": (7.0, 5.0), "row4": (9.0, 5.5)},
    }
    table = slots(5)
    rejected_all = []
    for rnd in (1, 2, 3):
        before = table
        table = scripted_round(table, rnd, scripts[rnd])
        kept, rejected = CodecDecide(round=rnd, depth=3, theta=3.0).process(table)
        assert kept.num_rows + rejected.num_rows == before.num_rows  # rows in = kept + rejected, per round
        rejected_all.append(rejected)
        table = kept
    final = {r["id"]: r for r in table.to_pylist()}
    assert set(final) == {"row0", "row1", "row4"}
    # row0: accepted in round 1 with the strong answer, then passed rounds 2-3 untouched
    r0 = final["row0"]
    assert (r0["codeclm_status"], r0["kept_round"], r0["winner"], r0["response"]) == (ACCEPTED, 1, "strong", "strong answer row0 r1")
    assert r0["instruction"] == "basic 0" and len(r0["lineage"]) == 1 and r0["lineage"][0]["outcome"] == "kept:strong"
    assert r0["messages"] == [{"role": "user", "content": "basic 0"}, {"role": "assistant", "content": "strong answer row0 r1"}]
    # row1: the target wins by more than theta in round 2 (the paper's rare case)
    r1 = final["row1"]
    assert (r1["kept_round"], r1["winner"], r1["response"], r1["instruction"]) == (2, "target", "target answer row1 r2", "basic 1 +r2")
    assert [e["outcome"] for e in r1["lineage"]] == ["next_round", "kept:target"]
    assert [e["action"] for e in r1["lineage"]] == [None, "action 2"]
    # row4: accepted in the last round; its lineage has every round's instruction and scores
    r4 = final["row4"]
    assert [(e["round"], e["instruction"], e["gap"]) for e in r4["lineage"]] == [(1, "basic 4", 0.0), (2, "basic 4 +r2", 0.5), (3, "basic 4 +r2 +r3", 3.5)]
    # the rejected: a judge parse error in round 2 (raw kept), no gap after the last round
    rej = {r["id"]: r for t in rejected_all for r in t.to_pylist()}
    assert rej["row3"][REASON] == "parse_error:judge" and rej["row3"][RAW] == "raw row3"
    assert [e["outcome"] for e in rej["row3"]["lineage"]] == ["next_round", "parse_error:judge"]
    assert rej["row2"][REASON] == "no_gap_after_depth"
    assert [(e["round"], e["score_strong"], e["score_target"]) for e in rej["row2"]["lineage"]] == [(1, 5.0, 5.0), (2, 6.0, 4.0), (3, 7.0, 5.0)]
    assert rej["row2"]["gap"] == 2.0


def test_decide_refuses_rounds_out_of_order():
    table = scripted_round(slots(2), 1, {"row0": (5.0, 5.0), "row1": (5.0, 5.0)})
    with pytest.raises(AligncraftError, match="out of order"):
        CodecDecide(round=2, depth=4).process(table)
    with pytest.raises(ConfigError):
        CodecDecide(round=5, depth=4)


def test_accepted_rows_pass_round_stages_without_a_model_call():
    # a model that cannot load: any engine call would fail the test
    table = scripted_round(slots(2), 1, {"row0": (9.0, 1.0), "row1": (1.0, 9.0)})
    kept, _ = CodecDecide(round=1, depth=4).process(table)
    assert kept.column("codeclm_status").to_pylist() == [ACCEPTED, ACCEPTED]
    stage = CodecRespond(role="strong", model="/nonexistent/model")
    out, rejected = stage.process(kept)
    assert rejected.num_rows == 0 and stage.llm is None
    assert out.column("response_strong").to_pylist() == kept.column("response_strong").to_pylist()
