"""``aligncraft verify`` through CliRunner: reference accuracies, reference-format output,
and one-line errors that name the file, line and field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli.verify import cli

RESPONSES = "input_response_data_gpt4_20231107_145030.jsonl"
PROMPT = {"key": 1, "prompt": "Say hi without commas.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
RESPONSE = {"prompt": "Say hi without commas.", "response": "Hi there"}


def _write(path: Path, *rows: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def small(tmp_path: Path) -> tuple[Path, Path]:
    return _write(tmp_path / "prompts.jsonl", PROMPT), _write(tmp_path / "responses.jsonl", RESPONSE)


@pytest.mark.parametrize(
    ("mode", "prompt_line", "instr_line"),
    [
        ("strict", "prompt-level accuracy:      417/541 = 0.7708", "instruction-level accuracy: 698/834 = 0.8369"),
        ("loose", "prompt-level accuracy:      431/541 = 0.7967", "instruction-level accuracy: 714/834 = 0.8561"),
    ],
)
def test_reference_accuracies_and_identical_results(runner: CliRunner, shared_data: Path, tmp_path: Path, mode: str, prompt_line: str, instr_line: str) -> None:
    ifeval = shared_data / "ifeval"
    out = tmp_path / "results.jsonl"
    result = runner.invoke(cli, ["--prompts", str(ifeval / "input_data.jsonl"), "--responses", str(ifeval / RESPONSES), "--mode", mode, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert prompt_line in result.stderr
    assert instr_line in result.stderr
    assert "punctuation:no_comma" in result.stderr
    assert result.stdout == ""
    # Same keys, order and json.dumps as the reference evaluator: byte-identical.
    assert out.read_bytes() == (ifeval / f"reference_eval_results_{mode}.jsonl").read_bytes()


def test_results_go_to_stdout_without_out(runner: CliRunner, small: tuple[Path, Path]) -> None:
    prompts, responses = small
    result = runner.invoke(cli, ["--prompts", str(prompts), "--responses", str(responses)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "follow_all_instructions": True,
        "follow_instruction_list": [True],
        "instruction_id_list": ["punctuation:no_comma"],
        "prompt": PROMPT["prompt"],
        "response": "Hi there",
    }
    assert "prompt-level accuracy:      1/1 = 1.0000" in result.stderr


@pytest.mark.parametrize(
    ("which", "rows", "message"),
    [
        ("responses", [RESPONSE, "{not json"], "responses.jsonl, line 2: malformed JSON"),
        ("responses", [{"prompt": PROMPT["prompt"]}], "responses.jsonl, line 1, column 'response': missing field"),
        ("responses", [{"prompt": "Another prompt", "response": "x"}], "responses.jsonl, line 1, column 'prompt': no prompt in"),
        ("responses", [RESPONSE, RESPONSE], "responses.jsonl, line 2, column 'prompt': duplicate prompt (first given on line 1)"),
        ("prompts", [PROMPT, {**PROMPT, "prompt": "Other.", "instruction_id_list": ["keywords:nope"]}], "prompts.jsonl, line 2, column 'instruction_id_list': unknown IFEval instruction id 'keywords:nope'"),
        ("prompts", [{**PROMPT, "kwargs": [{"num_words": 3}]}], "prompts.jsonl, line 1, column 'kwargs': instruction 'punctuation:no_comma': unknown kwarg(s) num_words"),
        ("prompts", [{**PROMPT, "kwargs": "none"}], "prompts.jsonl, line 1, column 'kwargs': expected list, got str"),
        ("prompts", [PROMPT, {**PROMPT, "prompt": "Unanswered."}], "prompts.jsonl, line 2, column 'prompt': no response in"),
        ("prompts", ["[1, 2]"], "prompts.jsonl, line 1: expected a JSON object, got list"),
        ("prompts", [], "prompts.jsonl: file is empty"),
    ],
)
def test_bad_files_fail_with_one_clear_line(runner: CliRunner, tmp_path: Path, which: str, rows: list, message: str) -> None:
    prompts = _write(tmp_path / "prompts.jsonl", *(rows if which == "prompts" else [PROMPT]))
    responses = _write(tmp_path / "responses.jsonl", *(rows if which == "responses" else [RESPONSE]))
    result = runner.invoke(cli, ["--prompts", str(prompts), "--responses", str(responses)])
    assert result.exit_code == 2  # InputError's exit code, kept by the command
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert result.stdout == ""


def test_non_utf8_names_the_line(runner: CliRunner, tmp_path: Path) -> None:
    prompts = _write(tmp_path / "prompts.jsonl", PROMPT)
    responses = tmp_path / "responses.jsonl"
    responses.write_bytes(json.dumps(RESPONSE).encode() + b"\n" + b'{"prompt": "caf\xe9"}\n')
    result = runner.invoke(cli, ["--prompts", str(prompts), "--responses", str(responses)])
    assert result.exit_code == 2
    assert "responses.jsonl, line 2: not valid UTF-8" in result.stderr


def test_missing_file_and_bad_mode_are_usage_errors(runner: CliRunner, small: tuple[Path, Path], tmp_path: Path) -> None:
    prompts, responses = small
    result = runner.invoke(cli, ["--prompts", str(tmp_path / "nope.jsonl"), "--responses", str(responses)])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    result = runner.invoke(cli, ["--prompts", str(prompts), "--responses", str(responses), "--mode", "lenient"])
    assert result.exit_code == 2
