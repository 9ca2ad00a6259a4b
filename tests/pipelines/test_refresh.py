"""``aligncraft refresh``: new inputs only, near-dups against earlier releases, the lock,
crash safety (a crash at every durable step, SIGKILL at random moments), damaged state.

Mechanics on a CPU-only recipe written here, so each refresh takes well under a second in
process; the subprocess tests pay Python's start-up, a few seconds each on a busy machine.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.errors import ConfigError
from pipelines.refresh import refresh
from pipelines.refresh_state import RefreshBusyError, StateError, load_state, take_refresh_lock
from pipelines.stage import Stage, empty_rejected

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
RECIPE = {
    "description": "CPU-only recipe for the refresh tests",
    "batch_size": 5,
    "source": {"type": "input"},
    "stages": [
        {"name": "clean", "stage": "empty_filter", "column": ["instruction", "response"]},
        {"name": "dedup", "stage": "exact_dedup", "column": "instruction"},
    ],
}
WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "su", "ti", "va", "ze") for b in ("ba", "de", "fi", "go", "hu", "ja", "ke", "li", "mo", "ny")]


class Gate(Stage):
    """Passes rows through once the file ``gate`` exists: holds a refresh mid-run (and its
    lock) for as long as a test needs, without sleeping a fixed time."""

    requires = {"instruction": pa.string()}

    def __init__(self, *, gate: str, delay: float = 0.0) -> None:
        self.gate, self.delay = gate, float(delay)
        self.params = {"gate": gate, "delay": delay}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        deadline = time.time() + 120
        while not Path(self.gate).exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(self.delay)
        return table, empty_rejected(table)


def rows(start: int, n: int, seed: int = 0) -> list[dict]:
    """Distinct instructions (12 random words each: no two are near-duplicates)."""
    rng = random.Random(seed * 100_003 + start)
    return [{"instruction": " ".join(rng.choice(WORDS) for _ in range(12)) + f" ({i})", "response": f"answer {i}"} for i in range(start, start + n)]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def write_recipe(path: Path, extra: list[dict] | None = None) -> Path:
    recipe = dict(RECIPE, stages=RECIPE["stages"] + (extra or []))
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def release(state: Path) -> pa.Table:
    """Every row of the release ``latest`` points at, sorted by id."""
    files = sorted((state / "latest" / "data").glob("*.parquet"))
    t = pa.concat_tables([pq.read_table(f) for f in files])
    return t.sort_by("id")


def run_refresh(recipe: Path, inp: Path, state: Path, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("workers", 0)
    return refresh(str(recipe), input_path=inp, state_dir=state, **kw)


def summary(state: Path) -> dict:
    """The latest version's refresh.json without what names the folder or the hour."""
    doc = json.loads((state / "latest" / "refresh.json").read_text())
    return {k: v for k, v in doc.items() if k not in ("command", "created")}


def assert_consistent(state: Path) -> None:
    """The invariant a crash must never break: ``latest`` (if any) names a listed, complete
    version whose files match their checksums."""
    st = load_state(state)
    link = state / "latest"
    if link.is_symlink():
        assert Path(os.readlink(link)).name in {v["name"] for v in st.versions}
        assert (link / "README.md").is_file()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A recipe, inputs, and a state with one version (40 rows) made from ``a.jsonl``."""
    d = tmp_path_factory.mktemp("refresh")
    recipe = write_recipe(d / "recipe.yaml")
    inbox = d / "inbox"
    write_jsonl(inbox / "a.jsonl", rows(0, 40))
    state = d / "state"
    (res,) = run_refresh(recipe, inbox, state, version="v1")
    assert res.version == "v1" and res.summary["rows_added"] == 40
    return d, recipe, inbox, state


def test_half_new_half_old_runs_only_the_new_rows(base, tmp_path):
    d, recipe, inbox, state0 = base
    state = tmp_path / "state"
    shutil.copytree(state0, state, symlinks=True)
    inp = tmp_path / "inbox"
    shutil.copytree(inbox, inp)
    old = rows(0, 40)
    near = dict(old[3], instruction=old[3]["instruction"].upper() + "!", response="a new answer")  # same words: a near-duplicate
    write_jsonl(inp / "b.jsonl", old[20:] + rows(40, 20) + [near])  # 20 old, 20 new, 1 near-dup
    sig_v1 = (state / "versions/v1/state/release.parquet").stat()
    (res,) = run_refresh(recipe, inp, state, version="v2")
    s = res.summary
    assert s["inputs"] == {"read": 81, "already_seen": 60, "repeated": 0, "new": 21}
    assert s["run"]["rows_in"] == 21 and s["run"]["kept"] == 21
    assert s["dropped"] == {"near_duplicate_of": 1}
    assert s["rows_added"] == 20 and s["rows_total"] == 60
    rej = pq.read_table(state / "latest/rejected/99-refresh.parquet")
    v1_ids = set(pq.read_table(state / "versions/v1/data/train-v1.parquet").column("id").to_pylist())
    (reason,) = rej.column("reject_reason").to_pylist()
    assert reason.startswith("near_duplicate_of:") and reason.split(":", 1)[1] in v1_ids
    # latest is the cumulative release: v1's file shared (hard link), v2's own rows added
    assert os.readlink(state / "latest") == os.path.join("versions", "v2")
    assert (state / "versions/v2/data/train-v1.parquet").stat().st_ino == (state / "versions/v1/data/train-v1.parquet").stat().st_ino
    t = release(state)
    ids = t.column("id").to_pylist()
    assert len(ids) == 60 == len(set(ids))
    assert set(t.column("instruction").to_pylist()) == {r["instruction"] for r in rows(0, 40) + rows(40, 20)}
    # v1's signatures were read, not rewritten
    after = (state / "versions/v1/state/release.parquet").stat()
    assert (after.st_ino, after.st_mtime_ns) == (sig_v1.st_ino, sig_v1.st_mtime_ns)
    card = (state / "latest/README.md").read_text()
    assert "| already seen by an earlier version (skipped, not run) | 60 |" in card
    assert "| near-duplicates of an earlier release (dropped) | 1 |" in card and "| **rows added** | **20** |" in card
    import datasets

    ds = datasets.load_dataset("parquet", data_dir=str(state / "latest" / "data"), split="train")
    assert ds.num_rows == 60


def test_nothing_new_exits_0_and_writes_nothing(base, runner, tmp_path):
    from pipelines.cli.main import cli

    d, recipe, inbox, state0 = base
    state = tmp_path / "state"
    shutil.copytree(state0, state, symlinks=True)
    before = {p: p.stat().st_mtime_ns for p in state.rglob("*") if p.name != ".refresh.owner"}
    res = runner.invoke(cli, ["refresh", str(recipe), "--input", str(inbox), "--state", str(state), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "nothing new" in res.output
    after = {p: p.stat().st_mtime_ns for p in state.rglob("*") if p.name != ".refresh.owner"}
    assert before == after and not (state / "work").exists()


def test_repeated_rows_within_an_input_run_once(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml")
    r = rows(0, 6)
    write_jsonl(tmp_path / "in.jsonl", r + r[:2])
    (res,) = run_refresh(recipe, tmp_path / "in.jsonl", tmp_path / "state")
    assert res.summary["inputs"] == {"read": 8, "already_seen": 0, "repeated": 2, "new": 6}
    assert res.summary["rows_added"] == 6


def test_refresh_needs_an_input_recipe(runner, tmp_path):
    from pipelines.cli.main import cli

    write_jsonl(tmp_path / "in.jsonl", rows(0, 2))
    res = runner.invoke(cli, ["refresh", "magpie-prefs", "--input", str(tmp_path / "in.jsonl"), "--state", str(tmp_path / "s")])
    assert res.exit_code == 2
    assert "refresh needs a recipe that reads inputs" in res.output and "Traceback" not in res.output


def test_second_refresh_waits_for_nothing(tmp_path):
    """Two refreshes at once: the second exits at once (code 75, one clear line) while the
    first, held mid-run by a gate, keeps its lock; the first then finishes normally."""
    gate = tmp_path / "gate"
    recipe = write_recipe(tmp_path / "recipe.yaml", [{"name": "gate", "stage": "tests.pipelines.test_refresh:Gate", "gate": str(gate)}])
    inp = write_jsonl(tmp_path / "in.jsonl", rows(0, 10))
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "pipelines.cli.main", "refresh", str(recipe), "--input", str(inp), "--state", str(state), "--no-progress", "--workers", "0"]
    first = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (state / "work" / "pending.json").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        t0 = time.time()
        second = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
        took = time.time() - t0
        assert second.returncode == 75, second.stderr
        assert f"Error: another aligncraft refresh is running on {state} (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # it did not wait for the first one
        assert took < 60
    finally:
        gate.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "10 rows added" in err


def test_busy_lock_in_process(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml")
    inp = write_jsonl(tmp_path / "in.jsonl", rows(0, 3))
    lock = take_refresh_lock(tmp_path / "state")
    try:
        with pytest.raises(RefreshBusyError, match="another aligncraft refresh is running") as exc:
            run_refresh(recipe, inp, tmp_path / "state")
        assert exc.value.exit_code == 75
    finally:
        lock.release()
    (res,) = run_refresh(recipe, inp, tmp_path / "state")
    assert res.summary["rows_added"] == 3


class Crash(BaseException):
    """Stands for the process dying at an exact durable step."""


def test_crash_at_every_durable_step_then_rerun(base, tmp_path, monkeypatch):
    """A crash just before each atomic rename of the refresh (shards, run outputs, the
    version folder, state.json, the latest link), then a plain rerun: the same version as
    an uninterrupted refresh, and latest never on a partial version."""
    d, recipe, inbox, state0 = base
    inp = tmp_path / "inbox"
    shutil.copytree(inbox, inp)
    write_jsonl(inp / "b.jsonl", rows(30, 30))  # 10 old, 20 new
    ref = tmp_path / "ref"
    shutil.copytree(state0, ref, symlinks=True)
    calls: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda *a, **k: (calls.append(str(a[1])), real_replace(*a, **k))[1])
    (want,) = run_refresh(recipe, inp, ref, version="v2")
    monkeypatch.setattr(os, "replace", real_replace)
    # before: the pending version is written, a shard of the run, the global stage's marker,
    # the run's card, the version's card, the version folder's rename, state.json, latest
    marks = ["work/pending.json", "stats/00001.json", "stats/global.json", "out/README.md", ".v2.tmp/README.md", "versions/v2", "state.json", "latest"]
    points = [next(i for i, c in enumerate(calls, 1) if c.endswith(m)) for m in marks]
    assert points == sorted(points), calls
    for k in points:
        state = tmp_path / f"k{k}"
        shutil.copytree(state0, state, symlinks=True)
        count = [0]

        def replace(*a, _k=k, _c=count, **kw):
            _c[0] += 1
            if _c[0] == _k:
                raise Crash(f"crash before rename {_k}")
            return real_replace(*a, **kw)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(Crash):
            run_refresh(recipe, inp, state, version="v2")
        monkeypatch.setattr(os, "replace", real_replace)
        assert_consistent(state)
        results = run_refresh(recipe, inp, state, version="v2")
        assert [r.version for r in results] == ["v2"], k
        assert release(state).equals(release(ref)), k
        assert summary(state) == summary(ref), k
        assert os.readlink(state / "latest") == os.path.join("versions", "v2")
        assert not (state / "work").exists()
        shutil.rmtree(state)


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_random_points_then_rerun(base, tmp_path, seed):
    """SIGKILL a refresh (subprocess) at random moments of its run, then run it again: the
    same version as an uninterrupted refresh."""
    d, recipe0, inbox, state0 = base
    gate = tmp_path / "gate"
    gate.touch()
    # a short pause per batch spreads the run over time, so kills land inside it
    recipe = write_recipe(tmp_path / "recipe.yaml", [{"name": "gate", "stage": "tests.pipelines.test_refresh:Gate", "gate": str(gate), "delay": 0.15}])
    inp = tmp_path / "inbox"
    shutil.copytree(inbox, inp)
    write_jsonl(inp / "b.jsonl", rows(30, 40))  # 10 old, 30 new: 6 batches
    ref = tmp_path / "ref"
    shutil.copytree(state0, ref, symlinks=True)
    run_refresh(recipe, inp, ref, version="v2")
    state = tmp_path / "state"
    shutil.copytree(state0, state, symlinks=True)
    cmd = [sys.executable, "-m", "pipelines.cli.main", "refresh", str(recipe), "--input", str(inp), "--state", str(state), "--version", "v2", "--no-progress", "--workers", "0"]
    rng = random.Random(seed)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline and not (state / "work" / "pending.json").exists():
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.2))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        assert_consistent(state)
    done = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert kills >= 1
    got, want = release(state), release(ref)
    assert got.column("id").to_pylist() == want.column("id").to_pylist(), (summary(state), summary(ref))
    assert got.equals(want)
    assert summary(state) == summary(ref)


def _damage(state: Path, how: str) -> None:
    v1 = state / "versions" / "v1"
    if how == "state_json_garbage":
        (state / "state.json").write_text('{"format": "aligncraft-refresh/1", "versions": [')
    elif how == "state_json_missing":
        (state / "state.json").unlink()
    elif how == "signatures_truncated":
        p = v1 / "state" / "release.parquet"
        p.write_bytes(p.read_bytes()[:100])
    elif how == "version_missing":
        shutil.rmtree(v1)
    elif how == "stray_version":
        shutil.copytree(v1, state / "versions" / "v0")
    elif how == "pending_garbage":
        (state / "work").mkdir()
        (state / "work" / "pending.json").write_text("not json")
    elif how == "latest_not_a_link":
        (state / "latest").unlink()
        (state / "latest").mkdir()


@pytest.mark.parametrize("how", ["state_json_garbage", "state_json_missing", "signatures_truncated", "version_missing", "stray_version", "pending_garbage", "latest_not_a_link"])
def test_damaged_state_is_a_clear_error_not_a_restart(base, tmp_path, how):
    d, recipe, inbox, state0 = base
    state = tmp_path / "state"
    shutil.copytree(state0, state, symlinks=True)
    inp = tmp_path / "inbox"
    shutil.copytree(inbox, inp)
    write_jsonl(inp / "b.jsonl", rows(40, 5))
    _damage(state, how)
    before = sorted(str(p.relative_to(state)) for p in state.rglob("*"))
    with pytest.raises(StateError, match="is damaged") as exc:
        run_refresh(recipe, inp, state)
    assert exc.value.exit_code == 3 and "another --state" in exc.value.format_message()
    assert sorted(str(p.relative_to(state)) for p in state.rglob("*")) == before  # nothing re-run, nothing written


def test_damaged_state_from_the_cli(base, runner, tmp_path):
    from pipelines.cli.main import cli

    d, recipe, inbox, state0 = base
    state = tmp_path / "state"
    shutil.copytree(state0, state, symlinks=True)
    _damage(state, "signatures_truncated")
    res = runner.invoke(cli, ["refresh", str(recipe), "--input", str(inbox), "--state", str(state)])
    assert res.exit_code == 3
    assert res.output.startswith(f"Error: the refresh state {state.absolute()} is damaged: {state.absolute()}/versions/v1/state/release.parquet does not match its checksum")
    assert "Traceback" not in res.output


def test_another_recipe_on_the_same_state_is_refused(base, tmp_path):
    d, recipe, inbox, state0 = base
    state = tmp_path / "state"
    shutil.copytree(state0, state, symlinks=True)
    other = write_recipe(tmp_path / "other.yaml")
    with pytest.raises(ConfigError, match="holds versions of recipe 'recipe', not 'other'"):
        run_refresh(other, inbox, state)


def test_dedup_column_is_fixed_by_the_first_version(base, tmp_path):
    d, recipe, inbox, state0 = base
    state = tmp_path / "state"
    shutil.copytree(state0, state, symlinks=True)
    inp = write_jsonl(tmp_path / "in.jsonl", rows(100, 2))
    with pytest.raises(ConfigError, match="compares releases on 'instruction', not 'response'"):
        run_refresh(recipe, inp, state, dedup_column="response")
