"""Faults across the product: a full disk, a read-only output folder, an OpenAI-compatible
server that fails or dies mid-run, and a run mixing LLM and CPU stages crashed at 20 points.

The disk tests mount a small tmpfs (root or CAP_SYS_ADMIN; skipped with the reason
otherwise) and fall back to RLIMIT_FSIZE in a subprocess, which needs no privilege. The LLM
stage talks to a canned OpenAI-compatible server (``serve`` below, run as a subprocess), so
killing the server is a real process dying under real HTTP requests.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.accounting import assert_accounting

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
CPU_RECIPE = {
    "description": "CPU-only recipe for the fault tests",
    "batch_size": 50,
    "source": {"type": "input"},
    "stages": [
        {"name": "clean", "stage": "empty_filter", "column": ["instruction", "response"]},
        {"name": "dedup", "stage": "exact_dedup", "column": "instruction"},
    ],
}


def write_inputs(path: Path, n: int, *, seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = [{"instruction": " ".join(f"w{rng.randrange(10**6)}" for _ in range(30)) + f" ({i})", "response": "x" * 300} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def cli_run(runner, *args: str):
    from pipelines.cli.main import cli

    return runner.invoke(cli, list(args), catch_exceptions=True)


def snapshot(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file() and not p.name.startswith(".aligncraft.lock")}


def assert_one_error_line(res, *needles: str) -> None:
    """``Error: ...`` (plus its hint line), no traceback, a user-error exit code."""
    out = res.output
    assert res.exit_code in (1, 74), (res.exit_code, out, res.exception)
    assert "Traceback" not in out and not isinstance(res.exception, (AssertionError, TypeError, KeyError)), out
    lines = [ln for ln in out.splitlines() if ln.startswith("Error: ")]
    assert len(lines) == 1, out
    for n in needles:
        assert n in lines[0], out


# -- small file systems -------------------------------------------------------------
@contextmanager
def tmpfs(path: Path, size_kb: int):
    """A tmpfs of ``size_kb`` at ``path`` (unmounted afterwards), or skip saying why."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({(r.stderr or r.stdout).strip()}); needs root or CAP_SYS_ADMIN (the RLIMIT_FSIZE test still runs)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(fs: Path, leave_kb: int) -> Path:
    """Fill ``fs`` up to ``leave_kb`` KiB free."""
    f = fs / "filler"
    f.unlink(missing_ok=True)
    free = shutil.disk_usage(fs).free // 1024
    with open(f, "wb") as fh:
        for _ in range(max(0, free - leave_kb) // 64):
            fh.write(b"\0" * 65536)
    return f


@contextmanager
def read_only(path: Path, fs: Path | None):
    """``path`` read-only: the tmpfs remounted ``ro`` (root ignores modes), else modes."""
    if os.geteuid() == 0:
        if fs is None or subprocess.run(["mount", "-o", "remount,ro", str(fs)], capture_output=True).returncode != 0:
            pytest.skip("running as root, where file modes do not stop writes, and cannot remount read-only")
        try:
            yield
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(fs)], check=True)
        return
    modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
    for p in modes:
        p.chmod(modes[p] & ~0o222)
    try:
        yield
    finally:
        for p, m in modes.items():
            p.chmod(m)


@pytest.fixture()
def fs(tmp_path):
    with tmpfs(tmp_path / "fs", 4096) as p:
        yield p


def test_full_disk_is_one_error_line_and_earlier_outputs_stay(fs, tmp_path, runner):
    recipe = write_recipe(tmp_path / "recipe.yaml", CPU_RECIPE)
    data = write_inputs(tmp_path / "in.jsonl", 300)
    out = fs / "out"
    args = ["run", str(recipe), "--input", str(data), "--out", str(out), "--no-progress", "--workers", "0"]
    assert cli_run(runner, *args).exit_code == 0
    before = snapshot(out)
    first = pq.read_table(out / "data" / "train-00000-of-00001.parquet")
    # another run into the same folder (changed settings: every stage recomputes), the disk
    # full at once, then with a little room (it fails inside the run's shards)
    again = [*args, "--set", "clean.column=instruction"]
    for leave in (0, 48):
        fill(fs, leave)
        res = cli_run(runner, *again)
        assert_one_error_line(res, "No space left on device")
        after = snapshot(out)
        assert {k: v for k, v in after.items() if not k.startswith("run/")} == {k: v for k, v in before.items() if not k.startswith("run/")}, leave
        # the earlier run's finished shards too (its config, manifest and log are the new run's to rewrite)
        changed = [k for k, v in before.items() if after.get(k) != v and not k.startswith(("run/config.yaml", "run/manifest.json", "run/log.txt"))]
        assert not changed, changed
        assert pq.read_table(out / "data" / "train-00000-of-00001.parquet").equals(first)
    # with room again, the same command resumes and finishes like a run on a roomy disk
    (fs / "filler").unlink()
    assert cli_run(runner, *again).exit_code == 0
    ref = tmp_path / "ref"
    assert cli_run(runner, "run", str(recipe), "--input", str(data), "--out", str(ref), "--no-progress", "--workers", "0", "--set", "clean.column=instruction").exit_code == 0
    assert pq.read_table(out / "data" / "train-00000-of-00001.parquet").equals(pq.read_table(ref / "data" / "train-00000-of-00001.parquet"))
    assert_accounting(out)


def test_disk_full_while_writing_the_output_leaves_the_old_output_whole(tmp_path, runner, monkeypatch):
    # bug: the output step replaced data/, dataset/, rejected/, README.md and stats.json one
    # after another, so a full disk at the card left new data beside the old card
    import errno

    import pipelines.output as output

    recipe = write_recipe(tmp_path / "recipe.yaml", CPU_RECIPE)
    data = write_inputs(tmp_path / "in.jsonl", 120)
    out = tmp_path / "out"
    args = ["run", str(recipe), "--input", str(data), "--out", str(out), "--no-progress", "--workers", "0"]
    assert cli_run(runner, *args).exit_code == 0
    before = {k: v for k, v in snapshot(out).items() if not k.startswith("run/")}
    again = [*args, "--set", "clean.column=instruction", "--limit", "60"]

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(output, "decorate_card", full)
        assert_one_error_line(cli_run(runner, *again), "No space left on device")
    assert {k: v for k, v in snapshot(out).items() if not k.startswith("run/")} == before
    assert not (out / ".output.tmp").exists()
    assert cli_run(runner, *again).exit_code == 0  # room again: the new output replaces the old whole
    assert pq.read_table(out / "data" / "train-00000-of-00001.parquet").num_rows == 60
    assert json.loads((out / "stats.json").read_text())["rows"] == 60 and not (out / "rejected").exists()
    assert_accounting(out)


def test_file_size_limit_is_one_error_line(tmp_path):
    """Without privileges: RLIMIT_FSIZE in a subprocess (SIGXFSZ ignored, so a write past
    the limit fails with EFBIG, as a quota would)."""
    recipe = write_recipe(tmp_path / "recipe.yaml", CPU_RECIPE)
    data = write_inputs(tmp_path / "in.jsonl", 300)
    code = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000)); "
        "sys.argv = ['aligncraft'] + sys.argv[1:]; from pipelines.cli.main import main; main()"
    )
    r = subprocess.run([sys.executable, "-c", code, "run", str(recipe), "--input", str(data), "--out", str(tmp_path / "out"), "--no-progress", "--workers", "0"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 74, r.stderr
    assert "Traceback" not in r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("Error: ")]
    assert line.startswith("Error: File too large: ") and str(tmp_path / "out") in line


def test_read_only_output_folder_is_one_error_line(fs, tmp_path, runner):
    recipe = write_recipe(tmp_path / "recipe.yaml", CPU_RECIPE)
    data = write_inputs(tmp_path / "in.jsonl", 60)
    out = fs / "out"
    args = ["run", str(recipe), "--input", str(data), "--out", str(out), "--no-progress", "--workers", "0"]
    assert cli_run(runner, *args).exit_code == 0
    before = snapshot(out)
    with read_only(out, fs):
        res = cli_run(runner, *args, "--set", "clean.column=instruction")
        assert_one_error_line(res, str(out))
        assert res.exit_code == 74
        assert "Read-only file system" in res.output or "Permission denied" in res.output
    assert snapshot(out) == before


def test_refresh_on_a_full_or_read_only_disk_keeps_latest(fs, tmp_path, runner):
    from pipelines.refresh_state import load_state

    recipe = write_recipe(tmp_path / "recipe.yaml", CPU_RECIPE)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_inputs(inbox / "a.jsonl", 100, seed=1)
    state = fs / "state"
    args = ["refresh", str(recipe), "--input", str(inbox), "--state", str(state), "--no-progress", "--workers", "0"]
    assert cli_run(runner, *args, "--version", "v1").exit_code == 0
    write_inputs(inbox / "b.jsonl", 100, seed=2)
    with read_only(state, fs):
        res = cli_run(runner, *args, "--version", "v2")
        assert_one_error_line(res, str(state))
    assert os.readlink(state / "latest") == os.path.join("versions", "v1")
    # a little more room each time: the refresh gets further (the run's shards, its global
    # stage, its dataset, the version's own files) and fails there, resuming each time
    failed = []
    for leave in (0, 16, 48, 100, 4096):
        fill(fs, leave)
        res = cli_run(runner, *args, "--version", "v2")
        if res.exit_code == 0:
            break
        assert_one_error_line(res, "No space left on device")
        failed.append(res.output.splitlines()[0])
        assert os.readlink(state / "latest") == os.path.join("versions", "v1")
        assert [v["name"] for v in load_state(state).versions] == ["v1"]  # checksums hold
    assert len(failed) >= 2, failed
    assert res.exit_code == 0, res.output
    assert "100 rows added (200 in all)" in res.output
    assert os.readlink(state / "latest") == os.path.join("versions", "v2")


# -- an OpenAI-compatible server that fails or dies ------------------------------------
def serve(port: int, fail_at: int, mode: str) -> None:
    """A canned OpenAI-compatible server on ``port``: ``/v1/models``, ``/v1/completions``,
    ``/v1/chat/completions`` (the answer echoes the prompt, so runs are deterministic). From
    POST number ``fail_at`` on (0: never) it answers 503 (``mode="503"``) or dies at once,
    SIGKILL, mid-request (``mode="die"``)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    count = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def send(self, obj: dict, status: int = 200) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self.send({"object": "list", "data": [{"id": "canned", "object": "model", "created": 0, "owned_by": "test"}]})

        def do_POST(self) -> None:
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with lock:
                count[0] += 1
                k = count[0]
            if fail_at and k >= fail_at:
                if mode == "die":
                    os.kill(os.getpid(), signal.SIGKILL)
                self.send({"error": {"message": "server overloaded", "type": "server_error"}}, status=503)
                return
            usage = {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
            if self.path.endswith("/chat/completions"):
                text = "canned answer: " + req["messages"][-1]["content"][:60]
                self.send({"id": f"c{k}", "object": "chat.completion", "created": 0, "model": "canned", "usage": usage,
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
            else:
                self.send({"id": f"c{k}", "object": "text_completion", "created": 0, "model": "canned", "usage": usage,
                           "choices": [{"index": 0, "text": " canned: " + req["prompt"][-40:], "finish_reason": "stop", "logprobs": None}]})

    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    srv.serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def canned_server(port: int, *, fail_at: int = 0, mode: str = "503"):
    proc = subprocess.Popen([sys.executable, __file__, "serve", str(port), str(fail_at), mode], cwd=REPO, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def llm_recipe(path: Path, port: int, *, batch_size: int = 6, extra: list[dict] | None = None) -> Path:
    recipe = {
        "description": "an LLM stage on an OpenAI-compatible server, then CPU stages",
        "batch_size": batch_size,
        # short timeouts and 2 retries (0.5 s, 1 s backoff) keep the failing requests quick
        "llm": {"backend": "openai", "model": "canned", "engine": {"base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 2, "timeout": 10, "max_concurrency": 4}},
        "source": {"type": "input"},
        "stages": [{"name": "respond", "stage": "respond", "sampling": {"max_tokens": 8}}, {"name": "lengths", "stage": "text_lengths", "columns": ["instruction", "response"]}, *(extra or [])],
    }
    return write_recipe(path, recipe)


def prompts(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"instruction": f"question number {i}: what is {i} plus {i}?"}) + "\n" for i in range(n)))
    return path


def test_failing_server_rows_are_rejected_and_the_run_finishes(tmp_path):
    """The server answers 503 from request 13 on: retried with backoff, then those rows are
    rejected with ``server_error``; every row is accounted for and the run finishes."""
    from pipelines.run import run_recipe

    port = free_port()
    recipe = llm_recipe(tmp_path / "recipe.yaml", port)
    data = prompts(tmp_path / "in.jsonl", 24)
    with canned_server(port, fail_at=13, mode="503"):
        t0 = time.time()
        res = run_recipe(str(recipe), input_path=str(data), out_dir=tmp_path / "out", progress=False, workers=0)
        took = time.time() - t0
    manifest = assert_accounting(tmp_path / "out")
    respond = manifest["stages"][0]
    assert respond["kept"] == 12 and respond["reasons"] == {"server_error": 12}
    rej = pq.read_table(tmp_path / "out" / "rejected" / "00-respond.parquet")
    assert set(rej.column("reject_reason").to_pylist()) == {"server_error"}
    assert res.rows == 12
    assert took > 1.0  # each failing request waited through its retries' backoff


def test_killed_server_rows_are_rejected_and_the_run_finishes(tmp_path):
    """The server is SIGKILLed mid-run (inside a request): the rows it can no longer answer are
    rejected as server_error after the retries, nothing is lost, and the run finishes."""
    from pipelines.run import run_recipe

    port = free_port()
    recipe = llm_recipe(tmp_path / "recipe.yaml", port)
    data = prompts(tmp_path / "in.jsonl", 24)
    with canned_server(port, fail_at=13, mode="die"):
        run_recipe(str(recipe), input_path=str(data), out_dir=tmp_path / "out", progress=False, workers=0)
    manifest = assert_accounting(tmp_path / "out")
    assert manifest["stages"][0]["kept"] == 12 and manifest["stages"][0]["reasons"] == {"server_error": 12}


class Crash(BaseException):
    """The process dying at one exact durable step (not an Exception: nothing catches it)."""


def test_crash_at_20_random_points_of_an_llm_and_cpu_run(tmp_path, monkeypatch):
    """A run with an LLM stage (the canned server), CPU stages and a global stage, crashed
    just before 20 random atomic renames over a chain of short attempts (each resumes the
    last), then finished: the same ids, rows and accounting as an uninterrupted run."""
    from pipelines.run import run_recipe

    port = free_port()
    extra = [{"name": "clean", "stage": "empty_filter", "column": ["instruction", "response"]}, {"name": "dedup", "stage": "exact_dedup", "column": "response"},
             {"name": "short", "stage": "length_filter", "column": "response", "max_chars": 52}]
    recipe = llm_recipe(tmp_path / "recipe.yaml", port, batch_size=4, extra=extra)
    data = prompts(tmp_path / "in.jsonl", 40)
    real = os.replace
    with canned_server(port):
        ref = run_recipe(str(recipe), input_path=str(data), out_dir=tmp_path / "ref", progress=False, workers=0)
        rng = random.Random(16)
        kills = 0
        for _ in range(20):
            k, count = rng.randint(1, 12), [0]

            def replace(*a, _k=k, _c=count, **kw):
                _c[0] += 1
                if _c[0] == _k:
                    raise Crash(f"before rename {_k}")
                return real(*a, **kw)

            monkeypatch.setattr(os, "replace", replace)
            try:
                run_recipe(str(recipe), input_path=str(data), out_dir=tmp_path / "out", progress=False, workers=0)
            except Crash:
                kills += 1
            finally:
                monkeypatch.setattr(os, "replace", real)
        res = run_recipe(str(recipe), input_path=str(data), out_dir=tmp_path / "out", progress=False, workers=0)
    assert kills >= 15
    a, b = pq.read_table(ref.out_dir / "data" / "train-00000-of-00001.parquet"), pq.read_table(res.out_dir / "data" / "train-00000-of-00001.parquet")
    assert b.column("id").to_pylist() == a.column("id").to_pylist()
    assert a.equals(b)
    ma, mb = assert_accounting(ref.out_dir), assert_accounting(res.out_dir)
    assert [(s["name"], s["rows_in"], s["kept"], s["reasons"]) for s in ma["stages"]] == [(s["name"], s["rows_in"], s["kept"], s["reasons"]) for s in mb["stages"]]
    assert ma["stages"][-1]["reasons"].get("too_long", 0) > 0 and 0 < b.num_rows < 40


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
