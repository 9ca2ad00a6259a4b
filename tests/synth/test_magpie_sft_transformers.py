"""The default recipe ``magpie-sft`` end to end on the transformers backend (the documented
fallback where vLLM is absent), on the tiny random Llama: mechanics, not quality."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from pipelines.run import run_recipe
from tests.accounting import assert_accounting

pytestmark = [pytest.mark.model, pytest.mark.slow]

TAGS = ("difficulty", "quality", "category")


# Bug (issue 10, item 7): without vLLM, magpie-sft died at its first tag stage after generation
# had run: the tags always ask for JSON structured output, which the transformers backend
# refused, and the judge picked its method from `self.backend or "vllm"`, not the backend in
# use. The transformers backend now answers `json` with Magpie's {-prefill + } stop and
# `choice` with constrained decoding, so the same recipe runs unchanged.
def test_magpie_sft_runs_on_the_transformers_backend(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    overrides = (
        "llm.backend=transformers", f"llm.model={tiny_model_dir}", "llm.max_model_len=2048",  # the tiny 512-token BPE spells the quality prompt in ~1,100 tokens (RoPE runs past 1024)
        "source.num_rows=4", "batch_size=4", "generate.max_tokens=12", "respond.sampling={max_tokens: 12}",
        # the random model writes no "}": its tags do not parse; keep the rows (null tags, reason in <tag>_error)
        *(f"{t}.sampling={{max_tokens: 12}}" for t in TAGS), *(f"{t}.on_parse_error='null'" for t in TAGS),
    )
    run_recipe("magpie-sft", out_dir=out, overrides=overrides, progress=False, workers=0)
    manifest = assert_accounting(out)
    assert [s["name"] for s in manifest["stages"]][-1] == "diversity"
    table = pq.read_table(out / "data" / "train-00000-of-00001.parquet")
    assert table.num_rows >= 1
    rows = table.to_pylist()
    for r in rows:
        assert r["difficulty_error"] == "parse_error:difficulty" or r["difficulty"] is not None
        assert 1.0 <= r["judge_score"] <= 10.0 and r["reward_model"].startswith("judge:")
        assert r["difficulty_generator"] == str(tiny_model_dir)
    assert "instruct_reward" not in table.column_names  # a judge score is not a reward model's
    assert len({r["judge_score"] for r in rows}) == len(rows) or len(rows) == 1  # continuous: no ties expected
