"""pipelines.pairs: the one best-vs-worst rule behind best-of-n and ACT pairs."""
from __future__ import annotations

import math

import pyarrow as pa

from pipelines.chat_format import MESSAGES
from pipelines.pairs import best_and_worst, pair_columns, pair_reason


def test_blank_and_missing_take_no_part():
    assert best_and_worst([9.0, 1.0, 5.0], ["", "a", "b"]) == (2, 1)
    assert best_and_worst([math.nan, 1.0, 5.0]) == (2, 1)
    assert best_and_worst([1.0, None, 5.0], ["a", "b", None]) is None


def test_reasons_in_order_of_precedence():
    assert pair_reason([1.0, 2.0], ["a", " "]) == "too_few_responses"
    assert pair_reason([2.0, 2.0, None]) == "tie"
    assert pair_reason([1.0, 1.4], min_margin=0.5) == "low_margin"
    assert pair_reason([1.0, 1.5], min_margin=0.5) is None  # the margin is inclusive


def test_columns_one_entry_per_row_even_without_a_pair():
    cols, reasons = pair_columns(["Q1", None], [["bad", "good"], None], [[0.0, 1.0], None], score_name="csr")
    assert reasons == [None, "too_few_responses"]
    assert set(cols) == {"prompt", "chosen", "rejected", "messages", "csr_chosen", "csr_rejected"}
    assert all(len(c) == 2 for c in cols.values())
    assert cols["messages"].to_pylist()[0] == [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "good"}]
    assert cols["prompt"].to_pylist()[1] == [{"role": "user", "content": ""}]
    assert cols["csr_chosen"].to_pylist() == [1.0, None]
    assert cols["chosen"].type == MESSAGES and cols["csr_rejected"].type == pa.float64()
