"""Fuzzing the input readers (hypothesis): JSON Lines, JSON, CSV and parquet with bad bytes,
truncation, wrong and mixed types, sparse keys, a BOM, CRLF, huge lines and NUL characters.

The property: never a traceback. ``read_input`` either returns the rows (and, for a file
that was only re-encoded, not damaged, exactly the rows that were written) or raises
``InputError`` whose message is one line naming the file, and the line where the format
has lines. Most examples call the reader directly (fast); a few go through ``aligncraft
run`` (CliRunner), where earlier outputs in the same --out must survive a bad input.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.errors import InputError
from pipelines.inputs import read_input

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], database=None)
KEYS = ["instruction", "response", "id", "input", "messages", "a b", "ünï"]
TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "line\nbreak", "crlf\r\nin", '"quoted"', "comma, here", "\ufeffbom", "2024-01-02", "007", "1e3", "true", ""]),
)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), TEXT)
VALUE = st.recursive(SCALAR, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["role", "content", "k"]), c, max_size=2), max_leaves=5)
RECORDS = st.lists(st.dictionaries(st.sampled_from(KEYS), VALUE, max_size=4), max_size=6)
STRING_RECORDS = st.lists(st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), st.text(max_size=20)), min_size=1, max_size=4), min_size=1, max_size=6)
# CSV has no nulls and no types: text that no CSV reader takes for a number, a date or a
# missing value (a letter first), with the characters that need quoting
CSV_TEXT = st.builds(lambda a, b: a + b, st.sampled_from("abcXYZé"), st.text(alphabet=st.sampled_from('ab ,"\n\tü\x00;'), max_size=15))
CSV_RECORDS = st.integers(1, 3).flatmap(lambda k: st.lists(st.fixed_dictionaries({key: CSV_TEXT for key in KEYS[:k]}), min_size=1, max_size=6))
BAD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\r", b"\n", b'"', b"{", b"}", b",", b"\xef\xbb\xbf", b"\x1f\x8b"]
KINDS = ("jsonl", "json", "csv", "parquet")


def serialize(kind: str, records: list[dict]) -> bytes:
    """``records`` in ``kind``'s format, as a user's tool would write them."""
    if kind == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in records).encode("utf-8", "surrogatepass")
    if kind == "json":
        return json.dumps(records).encode("utf-8", "surrogatepass")
    if kind == "csv":
        keys = list(dict.fromkeys(k for r in records for k in r))
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(keys)
        for r in records:
            w.writerow(["" if r.get(k) is None else (json.dumps(r[k]) if isinstance(r[k], (list, dict)) else r[k]) for k in keys])
        return buf.getvalue().encode("utf-8", "surrogatepass")
    try:
        table = pa.Table.from_struct_array(pa.array(records)) if records and any(records) else pa.table({"x": pa.array([None] * max(1, len(records)), pa.string())})
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
        table = None
    if table is None or any(pa.types.is_struct(f.type) and f.type.num_fields == 0 for f in table.schema):  # parquet cannot hold an empty struct
        table = pa.table({k: pa.array([json.dumps(r.get(k)) for r in records], pa.string()) for k in dict.fromkeys(k for r in records for k in r)} or {"x": pa.array([None] * len(records), pa.string())})
    buf = io.BytesIO()
    try:
        pq.write_table(table, buf)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # a type parquet cannot hold (deeply empty structs)
        buf = io.BytesIO()
        pq.write_table(pa.table({k: pa.array([json.dumps(r.get(k)) for r in records], pa.string()) for k in table.column_names}), buf)
    return buf.getvalue()


@st.composite
def damaged(draw, kind: str) -> tuple[bytes, bool]:
    """(file bytes, whether they still hold exactly the records written)."""
    data = serialize(kind, draw(RECORDS))
    intact = True
    if kind != "parquet" and draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data  # a BOM (Windows tools)
    if kind != "parquet" and draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")  # CRLF
    if draw(st.booleans()) and data:
        data = data[: draw(st.integers(0, len(data) - 1))]  # truncated
        intact = False
    for _ in range(draw(st.integers(0, 2))):
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(st.sampled_from(BAD_BYTES)) + data[pos:]  # bad bytes
        intact = False
    if kind in ("jsonl", "csv") and draw(st.integers(0, 9)) == 0:
        big = "w " * 150_000  # a 300 KB line
        data += (json.dumps({"instruction": big}) + "\n").encode() if kind == "jsonl" else f'"{big}"\n'.encode()
        intact = False
    return data, intact


def check(path: Path, data: bytes, intact: bool, records: list[dict] | None = None) -> pa.Table | None:
    """Read ``path``: a table, or an ``InputError`` that names the file (and a real line)."""
    try:
        table = read_input(path)
    except InputError as exc:
        msg = exc.format_message()
        first = msg.splitlines()[0]
        assert "\n" not in exc.message, msg  # the error itself is one line (a hint may follow)
        assert first.startswith(str(path)), msg
        m = re.search(r"\bline (\d+)\b", exc.message)
        if m:
            assert 1 <= int(m.group(1)) <= data.count(b"\n") + 1 + data.count(b"\r"), msg
        elif path.suffix in (".jsonl",) and not re.search(r"empty|no records|no rows|gzip", exc.message, re.I):
            pytest.fail(f"a JSON Lines error without a line: {msg}")
        return None
    assert isinstance(table, pa.Table) and table.num_rows > 0
    table.validate(full=True)
    if records is not None:
        assert table.num_rows == len(records), (table.num_rows, len(records))
    return table


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_any_bytes_read_or_name_the_file(tmp_path_factory, kind, data):
    raw, intact = data.draw(damaged(kind))
    path = tmp_path_factory.mktemp("fz") / f"in.{kind}"
    path.write_bytes(raw)
    check(path, raw, intact)


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet"])
@SETTINGS
@given(data=st.data(), bom=st.booleans(), crlf=st.booleans())
def test_well_formed_text_files_read_exactly(tmp_path_factory, kind, data, bom, crlf):
    """Re-encoded only (BOM, CRLF), never damaged: every row comes back, text intact."""
    records = data.draw(CSV_RECORDS if kind == "csv" else STRING_RECORDS)
    raw = serialize(kind, records)
    if kind != "parquet":
        raw = (b"\xef\xbb\xbf" if bom else b"") + (raw.replace(b"\n", b"\r\n") if crlf else raw)
    keys = list(dict.fromkeys(k for r in records for k in r))
    path = tmp_path_factory.mktemp("ok") / f"in.{kind}"
    path.write_bytes(raw)
    table = check(path, raw, True, records)
    assert table is not None, f"a well-formed {kind} file was refused"
    for k in keys:
        want = [r.get(k) for r in records]
        got = table.column(k).to_pylist()
        if kind == "csv" and crlf:
            want = [w.replace("\r\n", "\n") if isinstance(w, str) else w for w in want]
            got = [g.replace("\r\n", "\n") if isinstance(g, str) else g for g in got]
        assert got == want, (k, got, want)


@pytest.mark.parametrize("kind", ["jsonl", "json", "parquet"])
def test_sparse_keys_nul_and_line_breaks_read_exactly(tmp_path, kind):
    records = [{"instruction": "a"}, {"response": "only here"}, {"instruction": None, "id": "x"}, {"instruction": "nul \x00 inside", "response": "line\nbreak"}]
    raw = serialize(kind, records)
    path = tmp_path / f"in.{kind}"
    path.write_bytes((b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n")) if kind != "parquet" else raw)
    table = check(path, raw, True, records)
    assert table.column_names[:3] == ["instruction", "response", "id"]
    for k in ("instruction", "response", "id"):
        assert table.column(k).to_pylist() == [r.get(k) for r in records]


def test_a_record_longer_than_a_block(tmp_path):
    """A JSON Lines record over Arrow's 8 MiB block is read (bigger blocks), not refused."""
    p = tmp_path / "huge.jsonl"
    big = "x" * (9 << 20)
    p.write_text(json.dumps({"instruction": "short"}) + "\n" + json.dumps({"instruction": big}) + "\n")
    t = read_input(p)
    assert t.column("instruction").to_pylist() == ["short", big]


# -- through the CLI: bad input never touches earlier outputs ---------------------------
RECIPE = {"description": "fuzz", "batch_size": 50, "source": {"type": "input", "normalize": "sft", "required": ["instruction", "response"]},
          "stages": [{"name": "clean", "stage": "empty_filter", "column": ["instruction", "response"]}]}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """An --out folder holding a finished run's outputs."""
    from click.testing import CliRunner

    from pipelines.cli.main import cli

    d = tmp_path_factory.mktemp("cli")
    recipe = d / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    good = d / "good.jsonl"
    good.write_text("".join(json.dumps({"instruction": f"q{i}", "response": f"a{i}"}) + "\n" for i in range(5)))
    out = d / "out"
    res = CliRunner().invoke(cli, ["run", str(recipe), "--input", str(good), "--out", str(out), "--no-progress", "--workers", "0"])
    assert res.exit_code == 0, res.output
    return recipe, out


def outputs(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file() and not str(p.relative_to(out)).startswith("run/")}


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], database=None)
@given(data=st.data())
def test_cli_on_fuzzed_input(earlier, tmp_path_factory, kind, data):
    from click.testing import CliRunner

    from pipelines.cli.main import cli

    recipe, out = earlier
    raw, _ = data.draw(damaged(kind))
    path = tmp_path_factory.mktemp("fzcli") / f"in.{kind}"
    path.write_bytes(raw)
    before = outputs(out)
    res = CliRunner().invoke(cli, ["run", str(recipe), "--input", str(path), "--out", str(out), "--no-progress", "--workers", "0"])
    assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit)), (res.output, res.exception)
    if res.exit_code != 0:
        assert res.exit_code == 2, res.output
        (line,) = [ln for ln in res.output.splitlines() if ln.startswith("Error: ")]
        assert line.startswith(f"Error: {path}") or "stage '" in line, res.output
        assert outputs(out) == before  # the earlier run's dataset, card and rejected rows


# -- regressions: bugs the fuzzing found, one example each --------------------------------
@pytest.mark.parametrize("name,data,expect", [
    # a JSON "\ud800" escape (an unpaired surrogate) crashed the JSON reader (UnicodeEncodeError)
    ("in.json", b'[{"instruction": "ok"}, {"instruction": "\\ud800"}]', "row 2, column 'instruction': an unpaired surrogate"),
    # ... and gave JSON Lines an error without its line
    ("in.jsonl", b'{"instruction": "ok"}\n{"instruction": "x\\ud800"}\n', "line 2, column 'instruction': an unpaired surrogate"),
    # a CSV field over Python's csv limit (128 KiB) crashed the line finder (_csv.Error)
    ("in.csv", b"instruction,response\na,b\n\"" + b"w " * 100_000 + b"\"\n", "line 3: malformed CSV: 1 fields where the header has 2"),
    # Arrow's parquet error ended in a newline and a control byte: a two-line error
    ("in.parquet", b"PAR1\x15\xff\x04\x19\x1c5\x00\x18\x06schema\x15\x00\x00PAR1", "not a readable parquet file: "),
])
def test_regression_examples(tmp_path, name, data, expect):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as exc:
        read_input(path)
    assert "\n" not in exc.value.message and exc.value.message.startswith(str(path)) and expect in exc.value.message, exc.value.message


@pytest.mark.parametrize("messages", [None, "text", [None], [{"role": "user", "content": 5}], [{"k": 1}]])
def test_regression_messages_of_the_wrong_type(tmp_path, messages):
    """A ``messages`` column that is not a list of {role, content} crashed the SFT
    normalisation (AttributeError, ArrowTypeError); now an error naming file and column."""
    from pipelines.source import Source

    path = tmp_path / "in.parquet"
    path.write_bytes(serialize("parquet", [{"messages": messages, "other": "x"}]))
    with pytest.raises(InputError, match=r"in\.parquet, column 'messages': 'messages' has type .*; expected a list of \{role, content\} objects"):
        Source({"type": "input", "normalize": "sft", "required": ["instruction", "response"]}, seed=0, input_path=str(path)).table()


def test_regression_all_null_column_through_a_text_stage(earlier, tmp_path):
    """An all-null column read as Arrow type null broke empty_filter's text kernel
    (ArrowNotImplementedError in the stage); it is now a text column of nulls, rejected."""
    from click.testing import CliRunner

    from pipelines.cli.main import cli

    recipe, _ = earlier
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"instruction": pa.array(["q1", "q2"]), "response": pa.nulls(2)}), path)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["run", str(recipe), "--input", str(path), "--out", str(out), "--no-progress", "--workers", "0"])
    assert res.exit_code == 0, res.output
    rej = pq.read_table(out / "rejected" / "00-clean.parquet")
    assert rej.num_rows == 2


def test_regression_valid_jsonl_that_arrow_reads_into_an_invalid_table(tmp_path):
    """pyarrow.json builds an invalid list<null> column when a key holds [null, null] in one
    record and is absent in the next; the reader then refused a valid file without a line."""
    path = tmp_path / "in.jsonl"
    path.write_text('{"instruction": null, "response": [null, null]}\n{"instruction": "x"}\n')
    t = read_input(path)
    assert t.column("instruction").to_pylist() == [None, "x"]
    assert t.column("response").to_pylist() == [[None, None], None]


@pytest.mark.parametrize("name,data,expect", [
    # bad UTF-8 inside a key: Arrow kept it, reading the field name raised UnicodeDecodeError
    ("in.jsonl", b'{"\xffinstruction": ""}\n{"instruction": "w"}\n', "line 1: not valid UTF-8"),
    # an integer past 64 bits in a JSON list: OverflowError from pa.array
    ("in.json", b'[{"instruction": 1}, {"instruction": 9223372036854775808}]', "row 2, column 'instruction': a number too large for a 64-bit integer"),
])
def test_regression_examples_2(tmp_path, name, data, expect):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as exc:
        read_input(path)
    assert expect in exc.value.message, exc.value.message
