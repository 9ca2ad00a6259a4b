"""Fingerprints cover each stage's source code (its module and the project modules it
imports), so a code change recomputes that stage and what follows, nothing else."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import yaml

from pipelines.pipeline import PROJECT_ROOT as REPO
from pipelines.pipeline import StageSpec, code_hash, fingerprint, stage_code_hash

FILES = {
    "pipelines/__init__.py": "",
    "pipelines/errors.py": "class ConfigError(Exception):\n    pass\n",
    "pipelines/stage.py": "from pipelines.errors import ConfigError\n\nclass Stage:\n    pass\n",
    "filters/__init__.py": "",
    "filters/first.py": "from pipelines.stage import Stage\n\nclass First(Stage):\n    pass\n",
    "filters/parsing.py": "def parse(text):\n    return text.strip()\n",
    # the helper imported lazily, inside a method, as heavy or optional code is
    "filters/second.py": "from pipelines.stage import Stage\n\nclass Second(Stage):\n    def process(self, t):\n        from filters.parsing import parse\n        return parse(t)\n",
    "filters/third.py": "from ..pipelines import stage\nfrom . import first\n",
}


def chain(root) -> list[str]:
    """Fingerprints of first -> second -> third, as run.py computes them."""
    up, fps = "source", []
    for name in ("first", "second", "third"):
        fp = fingerprint(StageSpec(name, name, {}), "1", up, 8, code=code_hash(f"filters.{name}", root))
        fps.append(fp)
        up = fp
    return fps


def test_editing_a_module_changes_that_stage_and_downstream_only(tmp_path):
    # bug: fingerprints covered params and a hand-bumped `version` that was "1" everywhere,
    # so an upgraded aligncraft reused shards computed by older code
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    base = chain(tmp_path)
    assert chain(tmp_path) == base  # stable
    (tmp_path / "filters/parsing.py").write_text("def parse(text):\n    return text.strip().lower()\n")
    edited = chain(tmp_path)
    assert edited[0] == base[0] and edited[1] != base[1] and edited[2] != base[2]
    (tmp_path / "filters/third.py").write_text(FILES["filters/third.py"] + "# edited\n")
    again = chain(tmp_path)
    assert again[:2] == edited[:2] and again[2] != edited[2]
    (tmp_path / "pipelines/errors.py").write_text("class ConfigError(ValueError):\n    pass\n")
    shared = chain(tmp_path)  # the contract every stage imports: all recompute
    assert all(a != b for a, b in zip(shared, again))


def test_real_stages_hash_their_own_imports():
    from filters.dedup.exact import ExactDedup
    from filters.text.length import EmptyFilter, LengthFilter

    assert stage_code_hash(EmptyFilter) == stage_code_hash(LengthFilter)  # same module
    assert stage_code_hash(ExactDedup) != stage_code_hash(EmptyFilter)
    assert stage_code_hash(ExactDedup(column="instruction")) == stage_code_hash(ExactDedup)


def test_run_recomputes_an_edited_user_stage_and_what_follows(tmp_path):
    """End to end through the CLI: a stage given as module:Class outside the project."""
    (tmp_path / "mystage.py").write_text(textwrap.dedent('''
        import pyarrow as pa
        from pipelines.stage import Stage, empty_rejected

        class Upper(Stage):
            requires = {"instruction": pa.string()}

            def __init__(self):
                self.params = {}

            def process(self, table):
                import pyarrow.compute as pc
                return table.set_column(table.schema.get_field_index("instruction"), "instruction", pc.utf8_upper(table.column("instruction"))), empty_rejected(table)
    '''))
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps({"instruction": f"q{i}"}) for i in range(6)) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"description": "t", "batch_size": 4, "source": {"type": "input"}, "stages": [
        {"name": "clean", "stage": "empty_filter", "column": "instruction"},
        {"name": "upper", "stage": "mystage:Upper"},
        {"name": "lengths", "stage": "text_lengths", "columns": ["instruction"]},
    ]}))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipelines.cli.main", "run", str(recipe), "--input", str(data), "--out", str(out), "--no-progress", "--workers", "0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    subprocess.run(cmd, check=True, capture_output=True, timeout=120, env=env)
    before = {p.name for p in (out / "run" / "stages").iterdir()}
    with open(tmp_path / "mystage.py", "a") as f:
        f.write("\n# a code change that params and version do not show\n")
    subprocess.run(cmd, check=True, capture_output=True, timeout=120, env=env)
    new = sorted(p.name for p in (out / "run" / "stages").iterdir() if p.name not in before)
    assert [n.split("-")[1] for n in new] == ["upper", "lengths"]


def test_source_fingerprint_covers_the_reader_code(monkeypatch):
    # the reader's code decides the table (the union-schema fix added columns to the same
    # file), so shards made by an older reader must not be reused
    from pipelines import pipeline
    from pipelines.source import Source

    src = Source({"type": "generate", "num_rows": 3}, seed=0)
    before = src.fingerprint()
    monkeypatch.setattr(pipeline, "code_hash", lambda module, root=None: "edited" if module == "pipelines.source" else "x")
    assert src.fingerprint() != before
