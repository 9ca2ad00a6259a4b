"""Reading IFEval's JSONL files, with errors that name the file, line and field.

Prompts (``input_data.jsonl``): ``key, prompt, instruction_id_list, kwargs`` (``key`` is
optional here: nothing is scored by it).
Responses: ``prompt, response``. Results are written as the reference's
``eval_results_*.jsonl`` (same keys, same order, same ``json.dumps``), so they diff
cleanly against it.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from filters.verify.ifeval.registry import bind
from pipelines.errors import ConfigError, InputError

__all__ = ["PromptRecord", "ResponseRecord", "read_prompts", "read_responses", "result_line", "write_results"]


@dataclass(frozen=True)
class PromptRecord:
    """One IFEval prompt and its instructions; ``line`` is where it was read."""

    key: Any
    prompt: str
    instruction_id_list: tuple[str, ...]
    kwargs: tuple[Mapping[str, Any], ...]
    line: int = 0


@dataclass(frozen=True)
class ResponseRecord:
    """One model response, matched to its prompt by exact prompt text."""

    prompt: str
    response: str
    line: int = 0


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; bad bytes or JSON name the line."""
    from pipelines.inputs import json_records

    path = Path(path)
    if not path.is_file():
        raise InputError("cannot read file: no such file", path=str(path))
    seen = False
    for number, obj in json_records(path):
        seen = True
        yield number, obj
    if not seen:
        raise InputError("file is empty: expected one JSON object per line", path=str(path))


def _field(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: Path, line: int) -> Any:
    if name not in obj:
        raise InputError("missing field", path=str(path), line=line, column=name)
    value = obj[name]
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InputError(f"expected {want}, got {type(value).__name__}", path=str(path), line=line, column=name)
    return value


def read_prompts(path: str | Path) -> list[PromptRecord]:
    """IFEval prompts, with every instruction id and its kwargs checked up front."""
    path = Path(path)
    records = []
    for line, obj in _json_lines(path):
        prompt = _field(obj, "prompt", str, path, line)
        ids = _field(obj, "instruction_id_list", list, path, line)
        kwargs = _field(obj, "kwargs", list, path, line)
        if len(kwargs) != len(ids):
            msg = f"{len(kwargs)} kwargs for {len(ids)} instruction ids"
            raise InputError(msg, path=str(path), line=line, column="kwargs")
        for iid, kw in zip(ids, kwargs):
            if not isinstance(iid, str):
                raise InputError(f"instruction ids must be strings, got {iid!r}", path=str(path), line=line, column="instruction_id_list")
            if kw is not None and not isinstance(kw, dict):
                raise InputError(f"each kwargs entry must be an object, got {kw!r}", path=str(path), line=line, column="kwargs")
            try:
                bind(iid, kw)
            except ConfigError as e:
                column = "instruction_id_list" if e.message.startswith("unknown IFEval") else "kwargs"
                raise InputError(e.message, path=str(path), line=line, column=column) from None
        records.append(PromptRecord(obj.get("key"), prompt, tuple(ids), tuple(kw or {} for kw in kwargs), line))
    return records


def read_responses(path: str | Path) -> list[ResponseRecord]:
    """Model responses; a prompt text given twice is an error (which one to score?)."""
    path = Path(path)
    records = []
    first_line: dict[str, int] = {}
    for line, obj in _json_lines(path):
        prompt = _field(obj, "prompt", str, path, line)
        response = _field(obj, "response", str, path, line)
        if prompt in first_line:
            msg = f"duplicate prompt (first given on line {first_line[prompt]})"
            raise InputError(msg, path=str(path), line=line, column="prompt")
        first_line[prompt] = line
        records.append(ResponseRecord(prompt, response, line))
    return records


def result_line(result: Mapping[str, Any]) -> str:
    """One result as the reference writes it: keys sorted, default ``json.dumps``."""
    return json.dumps({k: result[k] for k in sorted(result)})


def write_results(results: list[Mapping[str, Any]], out: TextIO) -> None:
    """Write results as JSON Lines."""
    for r in results:
        out.write(result_line(r))
        out.write("\n")
