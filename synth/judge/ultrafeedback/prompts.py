"""The instruction text every UltraFeedback stage reads, from the layouts prompt files use.

Accepted column sets, tried in order (as TRL's ``data_utils`` lists accepted formats):
``instruction`` (text: Alpaca, AlpacaEval, Self-Instruct), ``prompt`` (text), ``turns``
(MT-Bench and Vicuna-bench keep each question's turns in a list: the first turn is the
single-turn prompt), ``messages`` (the first user turn). A file with none of them fails
validation, before any model loads.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import SchemaError
from pipelines.stage import Stage, set_column, split_by_reason

ACCEPTED = ("instruction", "prompt", "turns", "messages")


def prompt_source(schema: pa.Schema) -> str:
    """The first accepted column present with a usable type.

    >>> prompt_source(pa.schema([("question_id", pa.int64()), ("turns", pa.list_(pa.string()))]))
    'turns'
    """
    for name in ACCEPTED:
        i = schema.get_field_index(name)
        if i < 0:
            continue
        t = schema.field(i).type
        if name in ("instruction", "prompt") and (pa.types.is_string(t) or pa.types.is_large_string(t)):
            return name
        if name == "turns" and (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_string(t.value_type):
            return name
        if name == "messages" and (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_struct(t.value_type):
            return name
    msg = f"no prompt column: need one of instruction (text), prompt (text), turns (list of text), messages (has: {', '.join(schema.names)})"
    raise SchemaError(msg, stage="uf_prompt", column="instruction", hint="map yours with --set source.columns.instruction=<name in file>")


class UFPrompt(Stage):
    """Write ``instruction`` from the first accepted prompt column (see the module docstring).

    Rejected: ``empty_prompt`` (a blank or missing first turn).
    """

    adds = {"instruction": pa.string()}

    def __init__(self) -> None:
        self.params = {}

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        prompt_source(schema)  # fail validation when no column fits
        return super().output_schema(schema)

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        src = prompt_source(table.schema)
        col = table.column(src)
        if src == "turns":
            text = pc.list_element(pc.if_else(pc.greater(pc.list_value_length(col), 0), col, pa.scalar([""], col.type)), 0)
        elif src == "messages":
            text = pa.array([next((m["content"] for m in (conv or []) if m.get("role") == "user"), None) for conv in col.to_pylist()], pa.string())
        else:
            text = col
        text = pc.cast(text, pa.string())
        table = set_column(table, "instruction", text)
        blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), True)
        return split_by_reason(table, pc.if_else(blank, pa.scalar("empty_prompt"), pa.scalar(None, pa.string())))
