"""CodecLM's roles on different backends: the real ``codeclm`` recipe with the strong model
(encode, decode, rubrics, improve, the strong answers) and the judge on an OpenAI-compatible
server, and the target on local vLLM (the tiny random model) in an engine worker.

The server (:mod:`tests.scripted_openai`) is real HTTP in a thread of this process, scripted
as a strong model and an informative judge: each basic instruction's difficulty (a stable
hash) decides whether the judge separates the answers in round 1, only after one rewrite
(round 2), or never (``no_gap_after_depth`` at depth 3), so all three outcomes happen with 6
seeds and 8 slots.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.accounting import assert_accounting
from tests.scripted_openai import (
    STRONG,
    ScriptedServer,
    difficulty,
    kind,
    reply,
    split_revision,
)

SEEDS = "seeds/self_instruct_seed_tasks.jsonl"
DEPTH = 3
STRONG_MODEL, JUDGE_MODEL = "strong-model", "judge-model"
SERVER_STAGES = ("codeclm_encode", "codeclm_sanity", "codeclm_decode", "codeclm_rubrics", "codeclm_improve", "codeclm_judge")  # sanity: if the recipe turns it on


def server_llm(model: str, url: str) -> dict:
    # short timeouts and 2 retries, as tests/pipelines/test_faults.py's llm_recipe
    return {"backend": "openai", "model": model, "engine": {"base_url": url, "max_retries": 2, "timeout": 10, "max_concurrency": 4}}


def roles_recipe(path: Path, url: str, target: str) -> Path:
    """The codeclm recipe, depth 3, 8 slots; strong and judge on the server (two model names),
    the target on vLLM with short greedy answers."""
    from pipelines.recipe import RECIPES_DIR

    r = yaml.safe_load((RECIPES_DIR / "codeclm.yaml").read_text())
    r["stages"] = [s for s in r["stages"] if not (re.fullmatch(r"r\d+_\w+", s["name"]) and int(s["name"][1:].split("_")[0]) > DEPTH)]
    # the recipe's `llm: {backend: vllm, max_model_len: 2048}` stays: its options reach the
    # vLLM stages only (see test_recipe_llm_options_stay_off_a_server_stage)
    for s in r["stages"]:
        if s["stage"] == "codeclm_respond" and s["role"] == "target":
            # the tiny model has 1024 positions; 12 greedy tokens of gibberish
            s.update(backend="vllm", model=target, engine={"max_model_len": 512}, sampling={"temperature": 0.0, "max_tokens": 12})
        elif s["stage"] == "codeclm_respond":
            s.update(server_llm(STRONG_MODEL, url))
        elif s["stage"] in SERVER_STAGES:
            s.update(server_llm(JUDGE_MODEL if s["stage"] == "codeclm_judge" else STRONG_MODEL, url), structured=False)  # the server ignores grammars
        if s["stage"] == "codeclm_decide":
            s["depth"] = DEPTH
        if s["stage"] == "codeclm_metadata":
            s["num_rows"] = 8
    r["name"] = "codeclm"  # the codeclm card
    out = path / "codeclm-roles.yaml"
    out.write_text(yaml.safe_dump(r, sort_keys=False))
    return out


def test_scripted_replies_parse_with_the_stage_parsers():
    """The server's replies to the real prompts are what the stages read (no model, no server)."""
    from synth.codeclm.parse import (
        parse_improved,
        parse_metadata,
        parse_numbered_list,
        parse_rubrics,
        parse_score_pair,
    )
    from synth.codeclm.prompts import (
        decode_chat,
        encode_chat,
        improve_chat,
        judge_chat,
        rubrics_chat,
    )

    uc, skills = parse_metadata(reply(encode_chat("Give me a 700-calorie breakfast without eggs.")))
    assert uc and 1 <= len(skills) <= 3
    assert len(parse_numbered_list(reply(decode_chat(uc, skills, 1)))) == 1
    five = parse_numbered_list(reply(decode_chat(uc, skills, 5)))
    assert len(five) == len(set(five)) == 5
    rubrics, actions = parse_rubrics(reply(rubrics_chat(uc, skills, 4)), n=4)
    assert len(rubrics) == len(actions) == 4
    once = parse_improved(reply(improve_chat(actions[0], five[0])))
    twice = parse_improved(reply(improve_chat(actions[1], once)))
    assert split_revision(once) == (five[0], 1) and split_revision(twice) == (five[0], 2) and actions[1] in twice
    assert reply([{"role": "user", "content": twice}]) == STRONG + twice
    # the judge: 9 for the strong answer in either order when it separates, else 5 5
    by_d = {difficulty(q): q for q in five + [f"{five[0]} ({i})" for i in range(20)]}
    assert set(by_d) == {0, 1, 2}
    for d, basic in by_d.items():
        for q, gap in ((basic, d == 0), (parse_improved(reply(improve_chat("add a constraint", basic))), d in (0, 1))):
            strong_first = parse_score_pair(reply(judge_chat(q, STRONG + q, "gibberish")))
            target_first = parse_score_pair(reply(judge_chat(q, "gibberish", STRONG + q)))
            assert (strong_first, target_first) == (((9.0, 2.0), (2.0, 9.0)) if gap else ((5.0, 5.0), (5.0, 5.0)))
    assert kind(judge_chat("q", "a", "b")) == "judge" and kind(improve_chat("a", "b")) == "improve"


def test_recipe_llm_options_stay_off_a_server_stage():
    """Bug: the recipe's ``llm:`` options (vLLM's ``max_model_len``) were merged into a stage
    that names ``backend: openai``, which OpenAILLM rejects at load
    (``unexpected keyword argument 'max_model_len'``)."""
    from pipelines.pipeline import specs_from_recipe
    from pipelines.recipe import load_recipe
    from synth.backends.llm import load_backend

    r = load_recipe("codeclm", ("encode.backend=openai", f"encode.model={STRONG_MODEL}", "encode.engine={base_url: 'http://127.0.0.1:9/v1'}"))
    spec = next(s for s in specs_from_recipe(r) if s.name == "encode")
    stage = spec.build()
    llm = load_backend("openai", stage.model, **stage.engine)  # a client; sends nothing
    assert llm.base_url == "http://127.0.0.1:9/v1"


def decided(out: Path) -> tuple[list[dict], list[dict]]:
    final = pq.read_table(out / "data" / "train-00000-of-00001.parquet").to_pylist()
    rejected = [r for f in sorted((out / "rejected").glob("*decide.parquet")) for r in pq.read_table(f).to_pylist()]
    return final, rejected


@pytest.mark.model
def test_strong_and_judge_on_a_server_target_on_vllm(tmp_path, shared_data, tiny_model_dir, caplog, monkeypatch):
    pytest.importorskip("vllm")
    from pipelines.run import run_recipe

    monkeypatch.delenv("ALIGNCRAFT_KEEP_ENGINES", raising=False)  # this run's own pool: its workers start and stop in it
    caplog.set_level(logging.INFO, logger="synth.backends.workers")
    tiny = str(tiny_model_dir)
    with ScriptedServer() as server:
        recipe = roles_recipe(tmp_path, server.url, tiny)
        # not debug: debug runs the engines in this process, without workers
        res = run_recipe(str(recipe), input_path=str(shared_data / SEEDS), out_dir=tmp_path / "out", limit=6, progress=False, workers=0)
    manifest = assert_accounting(res.out_dir)
    stages = {s["name"]: s for s in manifest["stages"]}
    assert stages["encode"]["rows_in"] == 6 and stages["metadata"]["kept"] == 8
    assert stages["r1_strong"]["rows_in"] == 8, manifest["stages"]  # every slot decoded, every metadata's rubrics parsed

    # -- outcomes: the judge's script, round by round ------------------------------------
    final, rejected = decided(res.out_dir)
    assert len(final) + len(rejected) == 8
    for row in final:
        basic, revisions = split_revision(row["instruction"])
        assert row["winner"] == "strong" and row["response"] == STRONG + row["instruction"] == row["response_strong"]
        assert row["kept_round"] == difficulty(basic) + 1 == revisions + 1
        assert row["messages"] == [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["response"]}]
        assert [e["outcome"] for e in row["lineage"]] == ["next_round"] * (row["kept_round"] - 1) + ["kept:strong"]
        assert row["lineage"][-1]["gap"] == 7.0 and row["gap"] == 7.0
    assert {r["kept_round"] for r in final} == {1, 2}
    assert rejected, "no row reached the last round: the scripted difficulties no longer cover class 2"
    for row in rejected:
        assert row["reject_reason"] == "no_gap_after_depth" and row["codeclm_round"] == DEPTH
        basic, revisions = split_revision(row["instruction"])
        assert difficulty(basic) == 2 and revisions == DEPTH - 1
        assert [e["round"] for e in row["lineage"]] == [1, 2, 3] and [e["outcome"] for e in row["lineage"]] == ["next_round", "next_round", "no_gap_after_depth"]
        assert [split_revision(e["instruction"]) for e in row["lineage"]] == [(basic, k) for k in range(DEPTH)]
        assert all(e["gap"] == 0.0 and e["score_strong"] == 5.0 for e in row["lineage"])
        assert all(e["action"] for e in row["lineage"][1:]) and row["lineage"][0]["action"] is None

    # -- who answered what, where ---------------------------------------------------------
    for row in final + rejected:
        assert STRONG not in (row["response_target"] or "")  # the tiny model's gibberish, from vLLM
    assert any(row["response_target"] for row in final + rejected), "the target (vLLM) answered nothing"
    seen = server.by_kind()
    strong_kinds = {"encode", "decode", "rubrics", "improve", "answer"}
    assert strong_kinds | {"judge"} <= set(seen) <= strong_kinds | {"judge", "sanity"}, {k: len(v) for k, v in seen.items()}
    assert {k: {r["model"] for r in v} for k, v in seen.items()} == {k: {JUDGE_MODEL if k == "judge" else STRONG_MODEL} for k in seen}
    judged_rounds = sum(len(r["lineage"]) for r in final + rejected)
    assert len(seen["encode"]) == 6 and len(seen["improve"]) == judged_rounds - 8
    # one strong answer per judged round, none for the target, which vLLM served
    assert len(seen["answer"]) == judged_rounds and len(seen["judge"]) == 2 * judged_rounds
    from synth.codeclm.parse import (
        parse_improved,
        parse_metadata,
        parse_numbered_list,
        parse_rubrics,
        parse_score_pair,
    )
    from synth.codeclm.sanity import parse_yes_no

    parsers = {"encode": parse_metadata, "sanity": parse_yes_no, "decode": parse_numbered_list, "rubrics": parse_rubrics, "improve": parse_improved, "judge": parse_score_pair, "answer": str.strip}
    for k, reqs in seen.items():
        for r in reqs:
            parsers[k](r["reply"])

    # -- the card and the engine workers --------------------------------------------------
    card = (res.out_dir / "README.md").read_text()
    roles = card.split("## Models by role", 1)[1].split("\n## ", 1)[0]
    for name in ("encode", "decode", "rubrics", "r1_strong", "r2_improve", "r3_strong"):
        assert f"| {name} | strong | `{STRONG_MODEL}` |" in roles, roles
    for n in range(1, DEPTH + 1):
        assert f"| r{n}_target | target | `{tiny}` |" in roles and f"| r{n}_judge | judge | `{JUDGE_MODEL}` |" in roles, roles
    events = [r.getMessage() for r in caplog.records if r.name == "synth.backends.workers"]
    # one engine worker, the target's, in its own process; the server roles need none
    # (LLMStage.engines: a remote server has nothing resident here)
    assert [e for e in events if e.startswith("starting engine worker")] == [f"starting engine worker for vllm:{tiny}"], events
    assert [e for e in events if e.startswith("stopping engine worker")] == [f"stopping engine worker for vllm:{tiny}"], events
    (ready,) = [e for e in events if "ready (pid" in e]
    assert int(re.search(r"pid (\d+)", ready).group(1)) != os.getpid()
