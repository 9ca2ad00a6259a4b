from __future__ import annotations

import pyarrow as pa
import pytest

from filters.dedup.exact import ExactDedup
from filters.text.length import EmptyFilter, LengthFilter, TextLengths
from filters.text.columns import SelectColumns
from pipelines.errors import ConfigError
from pipelines.stage import RAW, REASON, Stage, rejected_rows, split_by_reason


def table(**cols):
    return pa.table(cols)


def test_split_by_reason_keeps_order_and_tags_rows():
    t = table(id=["a", "b", "c"], x=[1, 2, 3])
    kept, rej = split_by_reason(t, [None, "bad", None], raw=[None, "raw text", None])
    assert kept.column("id").to_pylist() == ["a", "c"]
    assert rej.column("id").to_pylist() == ["b"]
    assert rej.column(REASON).to_pylist() == ["bad"]
    assert rej.column(RAW).to_pylist() == ["raw text"]


def test_rejected_rows_replaces_earlier_reason_columns():
    t = rejected_rows(table(id=["a"]), "first")
    t2 = rejected_rows(t, "second")
    assert t2.column_names.count(REASON) == 1
    assert t2.column(REASON).to_pylist() == ["second"]


def test_empty_filter_reasons_name_the_column():
    t = table(id=["1", "2", "3", "4"], instruction=["hi", "  ", None, "ok"], response=["x", "y", "z", ""])
    kept, rej = EmptyFilter(column=["instruction", "response"]).process(t)
    assert kept.column("id").to_pylist() == ["1"]
    assert dict(zip(rej.column("id").to_pylist(), rej.column(REASON).to_pylist())) == {"2": "empty:instruction", "3": "empty:instruction", "4": "empty:response"}


def test_length_filter_chars_and_words():
    t = table(id=["1", "2", "3"], instruction=["a", "hello there you", "x" * 50])
    kept, rej = LengthFilter(column="instruction", min_chars=2, max_chars=20).process(t)
    assert kept.column("id").to_pylist() == ["2"]
    assert rej.column(REASON).to_pylist() == ["too_short:instruction", "too_long:instruction"]
    kept, rej = LengthFilter(column="instruction", min_chars=2, unit="words").process(t)
    assert kept.column("id").to_pylist() == ["2"]


@pytest.mark.parametrize("kwargs", [{}, {"min_chars": 5, "max_chars": 2}, {"min_chars": 1, "unit": "tokens"}])
def test_length_filter_bad_params_fail_at_construction(kwargs):
    with pytest.raises(ConfigError):
        LengthFilter(**kwargs)


def test_exact_dedup_keeps_first_and_names_it():
    t = table(id=["a", "b", "c", "d"], instruction=["Hello  World", "other", "hello world", "other"])
    kept, rej = ExactDedup(column="instruction").process(t)
    assert kept.column("id").to_pylist() == ["a", "b"]
    assert rej.column(REASON).to_pylist() == ["duplicate_of:a", "duplicate_of:b"]
    kept, rej = ExactDedup(column="instruction", normalize=False).process(t)
    assert kept.column("id").to_pylist() == ["a", "b", "c"]


def test_text_lengths_and_select_columns():
    t = table(id=["a"], instruction=["héllo"], response=["hi"], extra=[1])
    kept, rej = TextLengths(columns=["instruction", "response"]).process(t)
    assert kept.column("instruction_length").to_pylist() == [5]
    assert rej.num_rows == 0
    kept, _ = SelectColumns(keep=["instruction"], rename={"instruction": "prompt"}).process(t)
    assert kept.column_names == ["id", "prompt"]
    with pytest.raises(ConfigError):
        SelectColumns(drop=["id"])


def test_exact_dedup_on_a_messages_column():
    # bug: exact_dedup on a `messages` list column crashed (a list cannot be cast to text)
    from pipelines.chat_format import MESSAGES

    conv = lambda u, a: [{"role": "user", "content": u}, {"role": "assistant", "content": a}]  # noqa: E731
    t = pa.table({"id": ["a", "b", "c", "d", "e"], "messages": pa.array([conv("Hi  there", "yo"), conv("hi there", "YO"), conv("hi there", "other"), None, None], MESSAGES)})
    kept, rej = ExactDedup(column="messages").process(t)
    assert kept.column("id").to_pylist() == ["a", "c", "d"]
    assert rej.column(REASON).to_pylist() == ["duplicate_of:a", "duplicate_of:d"]
    kept, rej = ExactDedup(column="messages", normalize=False).process(t)
    assert kept.column("id").to_pylist() == ["a", "b", "c", "d"]


class Fanout(Stage):
    """Two rows per input row (like CodecLM's metadata slots); ``forget`` drops one input row."""

    parent = "from_id"

    def __init__(self, *, forget: bool = False) -> None:
        self.forget, self.params = forget, {}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        ids = table.column("id").to_pylist()[: -1 if self.forget else None]
        made = pa.table({"id": [f"{i}-{k}" for i in ids for k in (0, 1)], "from_id": [i for i in ids for _ in (0, 1)]})
        return made, rejected_rows(table.slice(0, 0), [])


def test_a_stage_that_makes_rows_is_accounted_by_parent_id():
    # the frame used to require kept + rejected == rows in, so a stage could not make more
    # rows than it got (CodecLM had to decode one instruction per seed)
    from pipelines.errors import StageError
    from pipelines.executor import apply_stage

    t = pa.table({"id": ["a", "b", "c"]})
    kept, rejected, stats = apply_stage("fanout", Fanout(), t, 0)
    assert (kept.num_rows, stats["rows_in"], stats["kept"], stats["consumed"], stats["rejected"]) == (6, 3, 6, 3, 0)
    with pytest.raises(StageError, match=r"input row\(s\) c neither rejected nor the parent of a kept row"):
        apply_stage("fanout", Fanout(forget=True), t, 0)
    from pipelines.run_store import merge_stats

    assert merge_stats([stats, {**stats, "consumed": 1, "kept": 2, "rows_in": 1}])["consumed"] == 4
