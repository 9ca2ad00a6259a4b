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
    # a JSON list is one line of text: name the record ("row 2"), not a "line 2" that isn't there
    with pytest.raises(InputError, match="mixed.json, row 2, column 'n': value is an object where earlier rows have a number"):
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


# -- issue 10 --------------------------------------------------------------------------
def test_jsonl_and_json_keep_keys_the_first_record_lacks(tmp_path):
    # bug: pa.Table.from_pylist took the columns from the first record, so row 2's `input`
    # and `id` vanished without a word
    rows = [{"instruction": "a"}, {"instruction": "b", "input": "ctx", "id": "x"}]
    for name, text in (("d.jsonl", "\n".join(json.dumps(r) for r in rows)), ("d.json", json.dumps(rows))):
        p = tmp_path / name
        p.write_text(text)
        t = read_input(p)
        assert t.column_names == ["instruction", "input", "id"], name
        assert t.to_pylist()[1] == {"instruction": "b", "input": "ctx", "id": "x"}
        assert t.to_pylist()[0] == {"instruction": "a", "input": None, "id": None}


def test_jsonl_strings_that_look_like_dates_stay_strings(tmp_path):
    # Arrow's JSON reader infers timestamps from ISO-looking strings; JSON has no timestamps
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"instruction": "2020-01-01", "m": [{"role": "user", "content": "2021-02-03 10:00:00"}]}) + "\n")
    t = read_input(p)
    assert t.to_pylist() == [{"instruction": "2020-01-01", "m": [{"role": "user", "content": "2021-02-03 10:00:00"}]}]


def test_corrupt_gzip_is_one_line_naming_the_file(tmp_path):
    # bug: a truncated .jsonl.gz ended in a gzip.BadGzipFile / EOFError traceback
    import gzip

    good = gzip.compress(b"".join(json.dumps({"instruction": f"q{i}"}).encode() + b"\n" for i in range(2000)))
    for name, data in (("cut.jsonl.gz", good[: len(good) // 2]), ("plain.jsonl.gz", b'{"instruction": "x"}\n')):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(InputError, match=f"{name}: not a readable gzip file") as e:
            read_input(p)
        assert "\n" not in e.value.message
    ok = tmp_path / "ok.jsonl.gz"
    ok.write_bytes(good)
    assert read_input(ok).num_rows == 2000


@pytest.mark.parametrize("name", ["b.jsonl", "b.jsonl.gz", "b.json", "b.csv"])
def test_utf8_bom_is_accepted(tmp_path, name):
    # bug: a JSONL file starting with a UTF-8 BOM (as Windows tools write it) was refused
    import gzip

    body = {"b.json": b'[{"instruction": "a"}, {"instruction": "b"}]', "b.csv": b"instruction\na\nb\n"}.get(name, b'{"instruction": "a"}\n{"instruction": "b"}\n')
    data = b"\xef\xbb\xbf" + body
    p = tmp_path / name
    p.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert read_input(p).to_pylist() == [{"instruction": "a"}, {"instruction": "b"}]


def test_jsonl_kind_change_names_the_line_even_when_nested(tmp_path):
    p = tmp_path / "m.jsonl"
    lines = [{"messages": [{"role": "user", "content": "hi"}]}] * 3 + [{"messages": [{"role": "user", "content": 7}]}]
    p.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    with pytest.raises(InputError, match=r"m.jsonl, line 4, column 'messages': value at messages\[\].content is a number where earlier lines have text"):
        read_input(p)
    p.write_text('{"instruction": "a", "instruction": "b"}\n')
    with pytest.raises(InputError, match="line 1: key 'instruction' appears twice"):
        read_input(p)


def test_user_ids_must_be_unique_and_present(tmp_path):
    # bug: user-supplied ids were trusted, so duplicate_of:<id> and Magpie's
    # min_similar_uuid != id rule went wrong on repeated or null ids
    p = tmp_path / "ids.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [{"id": "a", "q": "x"}, {"id": "b", "q": "y"}, {"id": "a", "q": "z"}]) + "\n")
    with pytest.raises(InputError, match="ids.jsonl, row 3, column 'id': id 'a' repeats row 1's") as e:
        Source({"type": "input"}, seed=0, input_path=str(p)).table()
    assert "source.ids=content" in e.value.hint
    p.write_text("\n".join(json.dumps(r) for r in [{"id": "a", "q": "x"}, {"q": "y"}]) + "\n")
    with pytest.raises(InputError, match="row 2, column 'id': null or empty id"):
        Source({"type": "input"}, seed=0, input_path=str(p)).table()
    # asked for: content ids replace them, the file's value is kept as input_id
    t = Source({"type": "input", "ids": "content"}, seed=0, input_path=str(p)).table()
    assert t.column("input_id").to_pylist() == ["a", None]
    assert len(set(t.column("id").to_pylist())) == 2
    # integer ids are fine when unique, as strings
    p.write_text("\n".join(json.dumps({"id": i, "q": "x"}) for i in range(3)) + "\n")
    assert Source({"type": "input"}, seed=0, input_path=str(p)).table().column("id").to_pylist() == ["0", "1", "2"]
    with pytest.raises(Exception, match="source.ids must be"):
        Source({"type": "input", "ids": "hash"}, seed=0, input_path=str(p))


def test_an_output_folder_is_an_input(tmp_path):
    # one recipe's output is the next one's --input (and crr's --a/--b): its data/ parquet,
    # not stats.json read as data
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    pq.write_table(pa.table({"instruction": ["q1", "q2"], "response": ["a1", "a2"]}), out / "data" / "train-00000-of-00001.parquet")
    (out / "stats.json").write_text('{"rows": 2}')
    (out / "README.md").write_text("card")
    t = read_input(out)
    assert t.column_names == ["instruction", "response"] and t.num_rows == 2
