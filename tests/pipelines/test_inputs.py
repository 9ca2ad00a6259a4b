from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.errors import InputError
from pipelines.inputs import read_input
from pipelines.source import Source, content_ids

ROWS = [{"prompt": "a", "answer": "1"}, {"prompt": "b", "answer": "2"}]


@pytest.fixture()
def files(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    js = tmp_path / "d.json"
    js.write_text(json.dumps(ROWS))
    csv = tmp_path / "d.csv"
    csv.write_text("prompt,answer\na,1\nb,2\n")
    pqf = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), pqf)
    import datasets

    ds_dir = tmp_path / "ds"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(ds_dir))
    return {"jsonl": jsonl, "json": js, "csv": csv, "parquet": pqf, "datasets": ds_dir}


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet", "datasets"])
def test_every_format_reads_and_maps_columns(files, kind):
    t = read_input(files[kind], columns={"instruction": "prompt"}, required=["instruction"])
    assert t.column("instruction").to_pylist() == ["a", "b"]
    assert "prompt" not in t.column_names


def test_malformed_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": "a"}\n{"prompt": "b"\n')
    with pytest.raises(InputError) as e:
        read_input(p)
    assert "bad.jsonl" in e.value.message and "line 2" in e.value.message


def test_non_utf8_names_line(tmp_path):
    p = tmp_path / "latin.jsonl"
    p.write_bytes(b'{"prompt": "a"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(InputError, match="line 2.*UTF-8"):
        read_input(p)


def test_missing_column_names_column(files):
    with pytest.raises(InputError) as e:
        read_input(files["jsonl"], required=["instruction"])
    assert "'instruction'" in e.value.message and "d.jsonl" in e.value.message
    with pytest.raises(InputError, match="column 'nope'"):
        read_input(files["jsonl"], columns={"instruction": "nope"})


def test_empty_file_and_missing_file(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_input(p)
    with pytest.raises(InputError, match="no such file"):
        read_input(tmp_path / "missing.jsonl")


def test_json_type_mismatch_names_row_and_column(tmp_path):
    p = tmp_path / "mixed.json"
    p.write_text(json.dumps([{"prompt": "a", "n": 1}, {"prompt": "b", "n": {"x": 1}}]))
    with pytest.raises(InputError, match="line 2.*column 'n'"):
        read_input(p)


def test_ids_are_content_hashes_and_unique_for_repeated_rows():
    t = pa.Table.from_pylist([{"a": "x"}, {"a": "y"}, {"a": "x"}])
    ids = content_ids(t).to_pylist()
    assert len(set(ids)) == 3
    assert ids == content_ids(t).to_pylist()  # stable
    assert content_ids(t.slice(0, 2)).to_pylist() == ids[:2]


def test_generate_source_ids_depend_on_seed_and_position():
    a = Source({"type": "generate", "num_rows": 5}, seed=0).table()
    b = Source({"type": "generate", "num_rows": 8}, seed=0).table()
    c = Source({"type": "generate", "num_rows": 5}, seed=1).table()
    assert a.column("id").to_pylist() == b.column("id").to_pylist()[:5]
    assert a.column("row_seed").to_pylist() == b.column("row_seed").to_pylist()[:5]
    assert set(a.column("id").to_pylist()).isdisjoint(c.column("id").to_pylist())


def test_sft_normalization_accepts_common_layouts():
    import pyarrow as pa

    from pipelines.source import maybe_sft_columns

    alpaca = pa.table({"instruction": ["q"], "input": [""], "output": ["a"]})
    assert maybe_sft_columns(alpaca).column("response").to_pylist() == ["a"]
    pc_ = pa.table({"prompt": ["q"], "completion": ["a"]})
    t = maybe_sft_columns(pc_)
    assert t.column("instruction").to_pylist() == ["q"] and t.column("response").to_pylist() == ["a"]
    assert maybe_sft_columns(t).equals(t)  # safe twice
    msgs = pa.table({"messages": [[{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]]})
    t = maybe_sft_columns(msgs)
    assert t.column("instruction").to_pylist() == ["q"] and t.column("response").to_pylist() == ["a"]


def test_malformed_csv_names_the_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("prompt,answer\na,1\nb,2,extra\n")
    with pytest.raises(InputError, match="bad.csv, line 3: malformed CSV: 3 fields where the header has 2"):
        read_input(p)
