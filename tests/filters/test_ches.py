"""CHES (filters/select/ches*.py): the maths against a transliteration of the reference code,
the selection modes on hand-made scores, the pair layouts (HH-RLHF transcripts), the stage's
mechanics on the tiny random model, and real behaviour with SmolLM2: the batched scores
equal the per-example reference on HH-RLHF pairs, identical responses score 0, near-identical
ones rank high, and `aligncraft run ches` end to end."""
from __future__ import annotations

import gzip
import itertools
import json

import numpy as np
import pyarrow as pa
import pytest

from filters.select.ches_math import (
    ches_from_sums,
    ches_reference,
    position_mask,
    quantile_slice,
    select_by_score,
    selection_count,
)
from filters.select.ches_pairs import PairColumns, split_hh_pair, trl_pair
from pipelines.chat_format import MESSAGES
from pipelines.errors import ConfigError, ParseError


def hh_rows(shared_data, name="hh_rlhf_helpful_base_test.jsonl.gz"):
    with gzip.open(shared_data / "preference" / name, "rt") as f:
        return [json.loads(line) for line in f]


def user(text):
    return [{"role": "user", "content": text}]


def bot(text):
    return [{"role": "assistant", "content": text}]


# -- maths (no model) ----------------------------------------------------------------------
def reference_batched_ches(pref, dispref, pref_idx, dispref_idx, length_normalize):
    """numpy transliteration of princeton-nlp/unintentional-unalignment ches/ches.py
    (left-padded sequences ending in EOS; positions before the last prompt token zeroed,
    the final -- EOS -- position dropped)."""
    def masked(h, idx):
        mask = np.arange(h.shape[1])[None, :] >= idx[:, None]
        return (h * mask[:, :, None])[:, :-1]

    p, d = masked(pref, pref_idx), masked(dispref, dispref_idx)
    sp, sd = p.sum(1), d.sum(1)
    if not length_normalize:
        return (sp * sd).sum(1) - np.linalg.norm(sp, axis=1) ** 2
    lp = p.shape[1] - pref_idx
    ld = d.shape[1] - dispref_idx
    return (sp * sd).sum(1) / (lp * ld) - np.linalg.norm(sp, axis=1) ** 2 / lp**2


def test_math_equals_the_reference_batched_and_per_example_code():
    rng = np.random.default_rng(0)
    hidden, pairs = 8, 5
    prompt = rng.integers(1, 6, pairs)
    n_c, n_r = rng.integers(1, 9, pairs), rng.integers(1, 9, pairs)
    seqs_c = [rng.normal(size=(p + n, hidden)) for p, n in zip(prompt, n_c)]
    seqs_r = [rng.normal(size=(p + n, hidden)) for p, n in zip(prompt, n_r)]

    # the reference batched layout: left padding, then an EOS position whose state is junk
    def left_padded(seqs):
        width = max(len(s) for s in seqs) + 1
        out = np.zeros((len(seqs), width, hidden))
        idx = np.zeros(len(seqs), dtype=int)
        for i, (s, p) in enumerate(zip(seqs, prompt)):
            out[i, width - 1 - len(s) : width - 1] = s
            out[i, width - 1] = rng.normal(size=hidden) * 100  # EOS: never summed
            idx[i] = width - 1 - len(s) + p - 1
        return out, idx

    (hc, ic), (hr, ir) = left_padded(seqs_c), left_padded(seqs_r)
    want = reference_batched_ches(hc, hr, ic, ir, False)
    want_ln = reference_batched_ches(hc, hr, ic, ir, True)

    # ours: right padding, position_mask, sums -> ches_from_sums
    def sums(seqs, n):
        width = max(len(s) for s in seqs) + 3
        padded = np.zeros((len(seqs), width, hidden))
        for i, s in enumerate(seqs):
            padded[i, : len(s)] = s
            padded[i, len(s) :] = 1e6  # padding garbage must not count
        mask = position_mask(prompt, prompt + n, width)
        assert (mask.sum(1) == n + 1).all()  # response tokens + the last prompt token
        return np.einsum("bt,bth->bh", mask, padded)

    got, got_ln = ches_from_sums(sums(seqs_c, n_c), sums(seqs_r, n_r), n_c + 1, n_r + 1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(got_ln, want_ln, rtol=1e-10, atol=1e-9)
    # and the per-example script's slicing
    per = np.array([ches_reference(c, r, p, p) for c, r, p in zip(seqs_c, seqs_r, prompt)])
    np.testing.assert_allclose(per[:, 0], want, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(per[:, 1], want_ln, rtol=1e-10, atol=1e-9)


def test_identical_responses_give_exactly_zero():
    # CHES = <S+, S-> - ||S+||^2 = ||S||^2 - ||S||^2 = 0 for S+ = S-, and LN-CHES likewise;
    # computed as <S+, S- - S+> it is exactly 0, not rounding noise of size ||S||^2 * 1e-16
    s = np.random.default_rng(1).normal(size=(3, 64)) * 50
    ches, ln = ches_from_sums(s, s, np.array([4, 9, 2]), np.array([4, 9, 2]))
    assert ches.tolist() == [0.0, 0.0, 0.0] and ln.tolist() == [0.0, 0.0, 0.0]
    # a rejected response that is the chosen one scaled up (longer, same direction) scores
    # above 0: CHES is not bounded by the identical pair's 0
    assert ches_from_sums(s[:1], 2 * s[:1], [4], [4])[0][0] > 0


# -- selection (no model) ------------------------------------------------------------------
SCORES = np.array([0.3, -2.0, 5.0, 1.0, -0.5, 4.0, 2.0, -1.0, 3.0, 0.0])  # row ranks: 4 0 9 5 2 8 6 1 7 3


def test_keep_lowest_keeps_the_lowest_fraction_rounded_up():
    side = select_by_score(SCORES, mode="keep_lowest", fraction=0.25)  # ceil(2.5) = 3 kept
    assert np.flatnonzero(side == 0).tolist() == [1, 4, 7]
    assert set(side[side != 0].tolist()) == {1}
    assert selection_count(380, fraction=0.05) == 19  # the paper's SORRY-Bench 19 pairs
    assert select_by_score(SCORES, mode="keep_lowest", num_samples=50).tolist() == [0] * 10


def test_drop_top_removes_the_highest():
    side = select_by_score(SCORES, mode="drop_top", fraction=0.2)
    assert np.flatnonzero(side).tolist() == [2, 5]
    assert select_by_score(SCORES, mode="drop_top", fraction=0.0).tolist() == [0] * 10


def test_quantile_window_is_the_reference_quantile_slice():
    side = select_by_score(SCORES, mode="quantile_window", num_samples=4, quantile=0.5)
    order = np.argsort(SCORES, kind="stable")
    assert sorted(np.flatnonzero(side == 0).tolist()) == sorted(quantile_slice(order, 0.5, 4).tolist())
    # centre index round(0.5 * 9) = 4 (numpy rounds half to even, as the reference does),
    # window start 4 - 2 = 2: ranks 2..5
    assert sorted(np.flatnonzero(side == 0).tolist()) == [0, 3, 4, 9]
    assert sorted(np.flatnonzero(side == -1).tolist()) == [1, 7]
    assert sorted(np.flatnonzero(side == 1).tolist()) == [2, 5, 6, 8]
    top = select_by_score(SCORES, mode="quantile_window", num_samples=2, quantile=1.0)
    assert np.flatnonzero(top == 0).tolist() == [2, 5]
    assert (select_by_score(SCORES, mode="quantile_window", num_samples=3, quantile=0.0) == select_by_score(SCORES, mode="keep_lowest", num_samples=3)).all()


def test_ties_rank_by_row_order():
    side = select_by_score(np.array([1.0, 1.0, 1.0, 0.0]), mode="keep_lowest", num_samples=2)
    assert side.tolist() == [0, 1, 1, 0]


# -- pair layouts (no model) ---------------------------------------------------------------
def test_hh_transcripts_split_into_trl_pairs(shared_data):
    rows = hh_rows(shared_data)
    reasons = {}
    odd = 0
    for r in rows:
        try:
            prompt, chosen, rejected = trl_pair(None, r["chosen"], r["rejected"])
        except ParseError as exc:
            reasons[str(exc).split(":")[0]] = reasons.get(str(exc).split(":")[0], 0) + 1
            continue
        assert prompt[0]["role"] == "user" and prompt[-1]["role"] == "user"
        # turns alternate, except in 6 of 2354 transcripts where a "Human:" sits inside an
        # assistant turn without its "\n\n" (HH-RLHF's own text, kept as written)
        roles = [m["role"] for m in prompt]
        odd += any(a == b for a, b in itertools.pairwise(roles))
        # the transcript is the prompt turns then the response, nothing lost or added
        text = "".join(f"\n\n{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in prompt)
        assert r["chosen"] in (f"{text}\n\nAssistant: {chosen[0]['content']}", f"{text}\n\nAssistant:{chosen[0]['content']}")
        assert r["rejected"].endswith(rejected[0]["content"])
    assert sum(reasons.values()) < 0.01 * len(rows) and odd < 0.01 * len(rows)
    assert set(reasons) <= {"prompt_mismatch"}
    p, c, r = split_hh_pair(rows[0]["chosen"], rows[0]["rejected"])
    assert p == user("Do you know why turkeys became the official food of thanksgiving?")
    assert c.startswith("To be honest, I don’t know") and r.startswith("I know that the American Indians")


def test_pair_layouts_and_their_rejections():
    table = pa.table({
        "chosen": pa.array([bot("yes"), [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], bot("x"), bot("y")], MESSAGES),
        "rejected": pa.array([bot("no"), [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}], bot("x"), None], MESSAGES),
    })
    # no prompt column: implicit-prompt conversations; a lone assistant turn shares nothing
    kept, rej = PairColumns().process(table)
    assert kept.column("prompt").to_pylist() == [user("q")]
    assert kept.column("chosen").to_pylist() == [bot("a")]
    assert rej.column("reject_reason").to_pylist() == ["no_shared_prompt", "no_shared_prompt", "empty_pair"]
    # an explicit string prompt with string responses (TRL standard) becomes messages
    std = pa.table({"prompt": ["Hi", "Yo"], "chosen": ["Hello", "Hey"], "rejected": ["Go", "No"], "id": ["a", "b"]})
    kept, rej = PairColumns().process(std)
    assert rej.num_rows == 0
    assert kept.column("prompt").to_pylist() == [user("Hi"), user("Yo")] and kept.column("rejected").to_pylist() == [bot("Go"), bot("No")]
    again, _ = PairColumns().process(kept)  # safe to apply twice
    assert again.equals(kept)
    # strings without Human/Assistant markers and no prompt
    kept, rej = PairColumns().process(pa.table({"chosen": ["just text"], "rejected": ["other"]}))
    assert rej.column("reject_reason").to_pylist() == ["not_a_transcript"] and rej.column("reject_raw").to_pylist() == ["just text"]


# -- the stage: configuration (no model) ---------------------------------------------------
@pytest.mark.parametrize(("params", "needle"), [
    ({"backend": "vllm"}, "transformers backend"),
    ({"mode": "top"}, "mode must be"),
    ({"score": "edit_distance"}, "score must be"),
    ({"fraction": 0.1, "num_samples": 3}, "not both"),
    ({"fraction": 1.5}, "fraction must be"),
    ({"quantile": 0.5}, "quantile applies"),
    ({"max_length": 1}, "max_length must be"),
])
def test_bad_configuration_fails_at_once(params, needle):
    from filters.select.ches import ChesFilter

    with pytest.raises(ConfigError, match=needle):
        ChesFilter(**params)


def test_recipe_validates_on_hh_rlhf(shared_data):
    from pipelines.pipeline import specs_from_recipe, validate
    from pipelines.recipe import load_recipe
    from pipelines.source import Source

    r = load_recipe("ches")
    source = Source(r["source"], seed=0, input_path=str(shared_data / "preference" / "hh_rlhf_helpful_base_test.jsonl.gz"), limit=4)
    built = [(spec, spec.build()) for spec in specs_from_recipe(r)]
    final = validate(built, source.table().schema)[-1]
    assert {"prompt", "chosen", "rejected", "ches", "ln_ches"} <= set(final.names)
    assert built[-1][1].is_global and built[-1][1].backend == "transformers"
    assert (built[-1][1].mode, built[-1][1].score, built[-1][1].fraction) == ("keep_lowest", "ln_ches", 0.05)


# -- the stage on the tiny random model (mechanics) ----------------------------------------
@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from synth.backends.llm import get_llm, release

    llm = get_llm("transformers", str(tiny_model_dir), max_model_len=2048)
    yield llm
    release(llm)


def tiny_pairs():
    prompts = [user("what is two plus three?"), "write a list of fruits", user("hello"), user("name three colors " * 40), user("say nothing"), user("repeat")]
    chosen = [bot("five, the answer is five."), "apple banana orange grape", bot("hello world, how are you?"), bot("red green blue"), bot(""), bot("the same text here")]
    rejected = [bot("six"), "python code function", bot("hello"), bot("blue"), bot("something"), bot("the same text here")]
    return prompts, chosen, rejected


@pytest.mark.model
def test_batched_equals_reference_whatever_the_batching_on_the_tiny_model(tiny):
    from filters.select.ches_states import pair_scores, reference_pair_scores

    p, c, r = tiny_pairs()
    one = pair_scores(tiny, p, c, r, max_length=64, batch_tokens=2)  # one pair per pass
    many = pair_scores(tiny, p, c, r, max_length=64, batch_tokens=4096)  # all in one padded pass
    assert one["error"] == many["error"] == [None, None, None, "prompt_too_long", "empty_response", None]
    ok = [i for i, e in enumerate(one["error"]) if e is None]
    ref = np.array([reference_pair_scores(tiny, p[i], c[i], r[i], max_length=64) for i in ok])
    for out in (one, many):
        np.testing.assert_allclose(out["ches"][ok], ref[:, 0], rtol=1e-4, atol=1e-2)
        np.testing.assert_allclose(out["ln_ches"][ok], ref[:, 1], rtol=1e-4, atol=1e-4)
    assert one["ches"][5] == one["ln_ches"][5] == 0.0  # identical tokens: computed once, exactly 0
    assert (one["n_chosen"][ok] == [len(tiny.tokenizer(t)["input_ids"]) + 1 for t in ("five, the answer is five.", "apple banana orange grape", "hello world, how are you?", "the same text here")]).all()
    with pytest.raises(ValueError, match="prompt_too_long"):
        reference_pair_scores(tiny, p[3], c[3], r[3], max_length=64)


@pytest.mark.model
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_stage_accounts_for_every_row(tiny_model_dir, dtype):
    from filters.select.ches import ChesFilter

    p, c, r = tiny_pairs()
    table = pa.table({
        "id": [f"r{i}" for i in range(7)],
        "prompt": pa.array(as_messages(p) + [user("x")], MESSAGES),
        "chosen": pa.array(as_messages(c, bot) + [None], MESSAGES),
        "rejected": pa.array(as_messages(r, bot) + [bot("y")], MESSAGES),
    })
    stage = ChesFilter(model=str(tiny_model_dir), mode="drop_top", num_samples=1, max_length=64, engine={"dtype": dtype})
    kept, rej = stage.process(table)
    assert kept.num_rows + rej.num_rows == table.num_rows
    reasons = dict(zip(rej.column("id").to_pylist(), rej.column("reject_reason").to_pylist()))
    assert reasons["r3"] == "prompt_too_long" and reasons["r4"] == "empty_response" and reasons["r6"] == "empty_pair"
    top = [k for k, v in reasons.items() if v.startswith("ches_top_fraction:")]
    assert len(top) == 1
    scored = {i: s for i, s in zip(kept.column("id").to_pylist(), kept.column("ln_ches").to_pylist())}
    top_score = rej.filter(pa.compute.equal(rej.column("id"), top[0])).column("ln_ches")[0].as_py()
    assert reasons[top[0]] == f"ches_top_fraction:{top_score:.6g}"
    assert all(np.isfinite(v) and v <= top_score for v in scored.values())
    assert kept.column("id").to_pylist() == sorted(scored, key=lambda k: int(k[1:]))  # input order
    assert kept.schema.field("ches").type == pa.float64() and kept.column("ches").null_count == 0
    if "r5" in scored:
        assert scored["r5"] == 0.0


def as_messages(values, wrap=user):
    return [wrap(v) if isinstance(v, str) else v for v in values]


# -- SmolLM2 on HH-RLHF pairs (real behaviour) ---------------------------------------------
@pytest.fixture(scope="module")
def smol_scores(shared_data, smollm_dir):
    """8 short HH-RLHF pairs + 2 near-identical (one word of the chosen response changed) +
    1 identical pair: batched scores and the per-example reference for each."""
    from filters.select.ches_states import pair_scores, reference_pair_scores
    from synth.backends.llm import get_llm

    rows = [r for r in hh_rows(shared_data) if len(r["chosen"]) + len(r["rejected"]) < 500 and r["chosen"] != r["rejected"]][:8]
    triples = [trl_pair(None, r["chosen"], r["rejected"]) for r in rows]
    prompts, chosen, rejected = (list(x) for x in zip(*triples))
    for k in (0, 1):
        words = chosen[k][0]["content"].split()
        words[len(words) // 2] = "maybe"
        prompts.append(prompts[k])
        chosen.append(chosen[k])
        rejected.append(bot(" ".join(words)))
    prompts.append(prompts[2])
    chosen.append(chosen[2])
    rejected.append(chosen[2])
    llm = get_llm("transformers", "default", max_model_len=2048)
    batched = pair_scores(llm, prompts, chosen, rejected, max_length=512, batch_tokens=4096)
    ref = np.array([reference_pair_scores(llm, p, c, r, max_length=512) for p, c, r in zip(prompts, chosen, rejected)])
    return batched, ref


@pytest.mark.model
@pytest.mark.slow
def test_batched_equals_reference_on_hh_rlhf_with_smollm2(smol_scores):
    batched, ref = smol_scores
    assert batched["error"] == [None] * 11
    # CHES differences of sums over ~10-40 states of norm ~50: compare against that scale
    np.testing.assert_allclose(batched["ches"], ref[:, 0], rtol=1e-5, atol=1.0)
    np.testing.assert_allclose(batched["ln_ches"], ref[:, 1], rtol=1e-5, atol=1e-3)


@pytest.mark.model
@pytest.mark.slow
def test_identical_zero_and_near_identical_rank_high_with_smollm2(smol_scores):
    batched, ref = smol_scores
    ln = batched["ln_ches"]
    assert batched["ches"][10] == ln[10] == 0.0  # the identical pair: exactly 0
    assert abs(ref[10, 0]) < 1e-6 and abs(ref[10, 1]) < 1e-6  # the literal formula: rounding noise
    # LN-CHES ranks the near-identical and identical pairs above most real pairs: all
    # three above the real pairs' median, none among the 3 lowest that keep_lowest keeps
    assert (ln[8:] > np.median(ln[:8])).all(), ln
    kept = np.flatnonzero(select_by_score(ln, mode="keep_lowest", num_samples=3) == 0)
    assert set(kept.tolist()) <= set(range(8))
    # raw CHES grows with length squared, so it does not rank them as reliably: the
    # paper filters with LN-CHES


@pytest.mark.model
@pytest.mark.slow
def test_ches_recipe_end_to_end_on_hh_rlhf(shared_data, runner, tmp_path):
    import datasets
    import pyarrow.parquet as pq

    from pipelines.cli.main import cli
    from tests.accounting import assert_accounting

    out = tmp_path / "ches"
    args = ["run", "ches", "--input", str(shared_data / "preference" / "hh_rlhf_helpful_base_test.jsonl.gz"), "--limit", "16", "--set", "ches.max_length=128", "--out", str(out), "--no-progress", "--workers", "0"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    manifest = assert_accounting(out)
    pairs, ches = manifest["stages"]
    assert pairs["rows_in"] == 16 and pairs["rejected"] == 0
    assert set(ches["reasons"]) <= {"ches_top_fraction", "prompt_too_long", "empty_response"}
    scored = ches["rows_in"] - sum(v for k, v in ches["reasons"].items() if k != "ches_top_fraction")
    assert ches["kept"] == selection_count(scored, fraction=0.05) >= 1
    ds = datasets.load_from_disk(str(out / "dataset"))
    assert {"prompt", "chosen", "rejected", "ches", "ln_ches", "id"} <= set(ds.column_names)
    assert ds[0]["prompt"][-1]["role"] == "user" and ds[0]["chosen"][0]["role"] == "assistant"
    rej = pq.read_table(next((out / "rejected").glob("*-ches.parquet"))).to_pylist()
    top = [r["ln_ches"] for r in rej if r["reject_reason"].startswith("ches_top_fraction:")]
    assert max(ds["ln_ches"]) <= min(top)  # the lowest LN-CHES were kept
    card = (out / "README.md").read_text()
    assert "### ln_ches" in card and "### ches" in card and "ches_top_fraction" in card and "keep_lowest" in card


@pytest.mark.parametrize(("recipe", "input_file"), [("magpie-prefs", None), ("act-prefs", "ifeval/input_data.jsonl"), ("ultrafeedback-prefs", "seeds/mt_bench_question.jsonl")])
def test_ches_stage_fits_every_preference_recipe(shared_data, recipe, input_file):
    """The line a user adds to a preference recipe (the recipes run vLLM, so the stage names
    its backend): it validates after the pair stage, with no model loaded."""
    from pipelines.pipeline import specs_from_recipe, validate
    from pipelines.recipe import list_recipes, load_recipe, validate_recipe
    from pipelines.source import Source

    if recipe not in list_recipes():
        pytest.skip(f"no {recipe} recipe in this checkout")
    r = load_recipe(recipe)
    r["stages"].append({"name": "ches", "stage": "ches_filter", "backend": "transformers", "mode": "drop_top", "fraction": 0.1})
    r = validate_recipe(r)
    source = Source(r["source"], seed=0, input_path=str(shared_data / input_file) if input_file else None, limit=4)
    built = [(spec, spec.build()) for spec in specs_from_recipe(r)]
    final = validate(built, source.table().schema)[-1]
    assert {"ches", "ln_ches", "prompt", "chosen", "rejected"} <= set(final.names)
    ches = built[-1][1]
    assert ches.backend == "transformers" and ches.model == r["llm"].get("model", "default")
